package query

import (
	"bytes"
	"strconv"

	"github.com/vigilsec/vigil/audit/format/logline"
)

// scan is the Parser's fast path: one pass over the line that decodes only
// the members a record needs and validates (but skips) everything else.
// It gives up — ok false, and the caller takes the slow, exact path
// (logline.Parse: encoding/json) — on anything where a shortcut could
// disagree with encoding/json: a \u escape, a null, a repeated object
// member, a member whose name differs from a used one only by case, an
// unexpected type, or malformed JSON.
type scan struct {
	b     []byte
	i     int
	arena []byte // unescaped strings
}

func (s *scan) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte (0 at the end).
func (s *scan) peek() byte {
	s.ws()
	if s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

func (s *scan) lit(w string) bool {
	if len(s.b)-s.i < len(w) || string(s.b[s.i:s.i+len(w)]) != w {
		return false
	}
	s.i += len(w)
	return true
}

// str reads a string; the result aliases the line (or the arena when it had
// escapes). Raw control characters are not rejected: a line holding one is
// not JSON, and only lines encoding/json accepts must decode identically.
func (s *scan) str() ([]byte, bool) {
	if s.peek() != '"' {
		return nil, false
	}
	s.i++
	start := s.i
	esc := false
	// Most strings are short (member names, ids): a plain loop beats
	// IndexByte's setup there; long ones (HMACs, data) switch to it.
	for n := 0; s.i < len(s.b) && n < 24; n++ {
		switch s.b[s.i] {
		case '"':
			out := s.b[start:s.i]
			s.i++
			if esc {
				return s.unescape(out)
			}
			return out, true
		case '\\':
			esc = true
			s.i += 2
			continue
		}
		s.i++
	}
	for {
		if s.i >= len(s.b) {
			return nil, false
		}
		j := bytes.IndexByte(s.b[s.i:], '"')
		if j < 0 {
			return nil, false
		}
		if !esc && bytes.IndexByte(s.b[s.i:s.i+j], '\\') >= 0 {
			esc = true
		}
		s.i += j
		// An escaped quote has an odd number of backslashes before it.
		k := s.i
		for k > start && s.b[k-1] == '\\' {
			k--
		}
		if (s.i-k)%2 == 0 {
			break
		}
		s.i++
	}
	out := s.b[start:s.i]
	s.i++
	if esc {
		return s.unescape(out)
	}
	return out, true
}

func (s *scan) unescape(raw []byte) ([]byte, bool) {
	start := len(s.arena)
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' {
			s.arena = append(s.arena, c)
			continue
		}
		i++
		if i >= len(raw) {
			return nil, false
		}
		switch raw[i] {
		case '"', '\\', '/':
			s.arena = append(s.arena, raw[i])
		case 'b':
			s.arena = append(s.arena, '\b')
		case 'f':
			s.arena = append(s.arena, '\f')
		case 'n':
			s.arena = append(s.arena, '\n')
		case 'r':
			s.arena = append(s.arena, '\r')
		case 't':
			s.arena = append(s.arena, '\t')
		default: // \u, or invalid
			return nil, false
		}
	}
	return s.arena[start:len(s.arena):len(s.arena)], true
}

// skipLax skips one value without validating it: exact on valid JSON
// (brackets balance, strings end at their first unescaped quote), and
// only lines encoding/json accepts must decode identically. Used for the
// members a record does not need (request and response data, headers...),
// which are most of a line.
func (s *scan) skipLax() bool {
	switch s.peek() {
	case '"':
		return s.skipStr()
	case '{', '[':
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '"':
				if !s.skipStr() {
					return false
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					s.i++
					return true
				}
			}
			s.i++
		}
		return false
	case 0:
		return false
	}
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return true
		}
		s.i++
	}
	return false
}

// skipStr skips a string (s.i at its opening quote).
func (s *scan) skipStr() bool {
	s.i++
	start := s.i
	for {
		j := bytes.IndexByte(s.b[s.i:], '"')
		if j < 0 {
			return false
		}
		s.i += j
		k := s.i
		for k > start && s.b[k-1] == '\\' {
			k--
		}
		s.i++
		if (s.i-1-k)%2 == 0 {
			return true
		}
	}
}

// number validates a JSON number.
func (s *scan) number() bool {
	i := s.i
	if i < len(s.b) && s.b[i] == '-' {
		i++
	}
	switch {
	case i < len(s.b) && s.b[i] == '0':
		i++
	case i < len(s.b) && s.b[i] >= '1' && s.b[i] <= '9':
		for i < len(s.b) && s.b[i] >= '0' && s.b[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(s.b) && s.b[i] == '.' {
		i++
		d := i
		for i < len(s.b) && s.b[i] >= '0' && s.b[i] <= '9' {
			i++
		}
		if i == d {
			return false
		}
	}
	if i < len(s.b) && (s.b[i] == 'e' || s.b[i] == 'E') {
		i++
		if i < len(s.b) && (s.b[i] == '+' || s.b[i] == '-') {
			i++
		}
		d := i
		for i < len(s.b) && s.b[i] >= '0' && s.b[i] <= '9' {
			i++
		}
		if i == d {
			return false
		}
	}
	s.i = i
	return true
}

// integer reads a number that encoding/json would put in an int.
func (s *scan) integer() (int, bool) {
	s.ws()
	start := s.i
	if !s.number() {
		return 0, false
	}
	v, err := strconv.Atoi(string(s.b[start:s.i]))
	return v, err == nil
}

func (s *scan) boolean() (bool, bool) {
	switch s.peek() {
	case 't':
		return true, s.lit("true")
	case 'f':
		return false, s.lit("false")
	}
	return false, false
}

// strList reads an array of strings into dst.
func (s *scan) strList(dst [][]byte) ([][]byte, bool) {
	if s.peek() != '[' {
		return nil, false
	}
	s.i++
	dst = dst[:0]
	if s.peek() == ']' {
		s.i++
		return dst, true
	}
	for {
		v, ok := s.str()
		if !ok {
			return nil, false
		}
		dst = append(dst, v)
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return dst, true
		default:
			return nil, false
		}
	}
}

// members iterates an object's members: fn gets each name and must consume
// the value. Returns false on malformed JSON or when fn does.
func (s *scan) members(fn func(key []byte) bool) bool {
	if s.peek() != '{' {
		return false
	}
	s.i++
	if s.peek() == '}' {
		s.i++
		return true
	}
	for {
		k, ok := s.str()
		if !ok || s.peek() != ':' {
			return false
		}
		s.i++
		if !fn(k) {
			return false
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return true
		default:
			return false
		}
	}
}

// folds reports whether k differs from one of the used names only by
// case (encoding/json would decode it into that field: give up).
func folds(k []byte, used ...string) bool {
	for _, u := range used {
		if len(k) == len(u) && string(k) != u && bytes.EqualFold(k, []byte(u)) {
			return true
		}
	}
	return false
}

// fastFields fills f from line (a Vault entry with chain members). ok is
// false when the slow path must decide.
func (p *Parser) fastFields(line []byte, f *Fields) (kind Kind, ok bool) {
	s := &p.sc
	s.b, s.i, s.arena = line, 0, s.arena[:0]
	var typ, timeB []byte
	seen := 0
	once := func(bit int) bool {
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		return true
	}
	var respAuth struct{ dn, ent, acc []byte }
	var prSeen, flagsSeen, identitySeen, nsSeen bool
	top := s.members(func(k []byte) bool {
		var ok bool
		switch string(k) {
		case "time":
			timeB, ok = s.str()
		case "type":
			typ, ok = s.str()
		case "error":
			f.Error, ok = s.str()
		case "auth":
			if !once(1) {
				return false
			}
			ok = s.members(func(k []byte) bool {
				var ok bool
				switch string(k) {
				case "accessor":
					f.Accessor, ok = s.str()
				case "display_name":
					f.DisplayName, ok = s.str()
				case "entity_id":
					f.EntityID, ok = s.str()
				case "token_type":
					f.TokenType, ok = s.str()
				case "policies":
					f.Policies, ok = s.strList(f.Policies)
				case "policy_results":
					if prSeen {
						return false
					}
					prSeen = true
					ok = s.members(func(k []byte) bool {
						switch string(k) {
						case "allowed":
							v, ok := s.boolean()
							f.Allowed = v
							return ok
						case "granting_policies":
							if s.peek() != '[' {
								return false
							}
							s.i++
							f.Granting = f.Granting[:0]
							if s.peek() == ']' {
								s.i++
								return true
							}
							for {
								var name []byte
								if !s.members(func(k []byte) bool {
									if string(k) == "name" {
										var ok bool
										name, ok = s.str()
										return ok
									}
									return !folds(k, "name") && s.skipLax()
								}) {
									return false
								}
								f.Granting = append(f.Granting, name)
								switch s.peek() {
								case ',':
									s.i++
								case ']':
									s.i++
									return true
								default:
									return false
								}
							}
						}
						return !folds(k, "allowed", "granting_policies") && s.skipLax()
					})
				default:
					ok = !folds(k, "accessor", "display_name", "entity_id", "token_type", "policies", "policy_results") && s.skipLax()
				}
				return ok
			})
		case "request":
			if !once(2) {
				return false
			}
			ok = s.members(func(k []byte) bool {
				var ok bool
				switch string(k) {
				case "id":
					f.RequestID, ok = s.str()
				case "operation":
					f.Operation, ok = s.str()
				case "path":
					f.Path, ok = s.str()
				case "mount_point":
					f.MountPoint, ok = s.str()
				case "mount_type":
					f.MountType, ok = s.str()
				case "remote_address":
					f.RemoteAddr, ok = s.str()
				case "remote_port":
					f.RemotePort, ok = s.integer()
				case "namespace":
					if nsSeen {
						return false
					}
					nsSeen = true
					ok = s.members(func(k []byte) bool {
						if string(k) == "path" {
							var ok bool
							f.Namespace, ok = s.str()
							return ok
						}
						return !folds(k, "path") && s.skipLax()
					})
				default:
					ok = !folds(k, "id", "operation", "path", "mount_point", "mount_type", "remote_address", "remote_port", "namespace") && s.skipLax()
				}
				return ok
			})
		case "response":
			if !once(4) {
				return false
			}
			ok = s.members(func(k []byte) bool {
				if string(k) != "auth" {
					return !folds(k, "auth") && s.skipLax()
				}
				return s.members(func(k []byte) bool {
					var ok bool
					switch string(k) {
					case "display_name":
						respAuth.dn, ok = s.str()
					case "entity_id":
						respAuth.ent, ok = s.str()
					case "accessor":
						respAuth.acc, ok = s.str()
					default:
						ok = !folds(k, "display_name", "entity_id", "accessor") && s.skipLax()
					}
					return ok
				})
			})
		case "vigil":
			if !once(8) {
				return false
			}
			ok = s.members(func(k []byte) bool {
				var ok bool
				switch string(k) {
				case "deny_reasons":
					f.DenyReasons, ok = s.strList(f.DenyReasons)
				case "actor":
					var a []byte
					a, ok = s.str()
					f.Internal = len(a) > 0
				case "sealed":
					f.Sealed, ok = s.boolean()
				case "status":
					f.Status, ok = s.integer()
				case "error_code":
					f.ErrorCode, ok = s.str()
				case "identity":
					if identitySeen {
						return false
					}
					identitySeen = true
					ok = s.members(func(k []byte) bool {
						var ok bool
						switch string(k) {
						case "actor":
							f.Actor, ok = s.str()
						case "entity_name":
							f.EntityName, ok = s.str()
						default:
							ok = !folds(k, "actor", "entity_name") && s.skipLax()
						}
						return ok
					})
				case "flags":
					if flagsSeen || s.peek() != '{' {
						return false
					}
					flagsSeen = true
					f.FlagNames, f.FlagValues = f.FlagNames[:0], f.FlagValues[:0]
					ok = s.members(func(k []byte) bool {
						v, ok := s.str()
						for _, n := range f.FlagNames {
							if bytes.Equal(n, k) {
								return false // a repeated flag: let encoding/json decide
							}
						}
						f.FlagNames, f.FlagValues = append(f.FlagNames, k), append(f.FlagValues, v)
						return ok
					})
				default:
					ok = !folds(k, "deny_reasons", "actor", "sealed", "status", "error_code", "identity", "flags") && s.skipLax()
				}
				return ok
			})
		case "segment", "event", "checkpoint":
			return false // a Vault entry carrying a chain record's member: slow path
		default:
			ok = !folds(k, "time", "type", "error", "auth", "request", "response", "vigil", "segment", "event", "checkpoint") && s.skipLax()
		}
		return ok
	})
	if !top || s.peek() != 0 {
		return KindOther, false
	}
	switch string(typ) {
	case "request":
		kind = KindRequest
	case "response":
		kind = KindResponse
	default:
		return KindOther, true
	}
	ns, has, ok := fastTime(timeB)
	if !ok {
		return KindOther, false
	}
	f.UnixNano, f.HasTime, f.Incomplete = ns, has, kind == KindRequest
	if !prSeen {
		f.Allowed = len(f.Error) == 0 && f.Status < 400
	}
	login := isLogin(string(f.Path))
	if login && seen&4 != 0 {
		f.DisplayName, f.EntityID, f.Accessor = orb(f.DisplayName, respAuth.dn), orb(f.EntityID, respAuth.ent), orb(f.Accessor, respAuth.acc)
	}
	// The canonical actor, as logline.Line.Actor.
	f.Actor = orb(f.Actor, f.DisplayName)
	if len(f.Actor) == 0 && login {
		if a := logline.LoginActor(string(f.MountPoint), string(f.Path)); a != "" {
			f.Actor = []byte(a)
		}
	}
	sortFlags(f.FlagNames, f.FlagValues)
	return kind, true
}
