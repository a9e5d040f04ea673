package vault

import (
	"encoding/json"
	"sort"
	"strconv"
	"unicode/utf8"
)

// appendEntry appends e as JSON, byte for byte what encoding/json's
// Marshal produces for it (the golden file and FuzzEncodeMatchesMarshal
// hold it to that), without reflection on the fixed structs: entries are
// encoded twice per request on the hot path.
func appendEntry(b []byte, e *Entry) ([]byte, error) {
	b = append(b, `{"time":`...)
	b = appendString(b, e.Time)
	b = append(b, `,"type":`...)
	b = appendString(b, e.Type)
	if e.Auth != nil {
		b = append(b, `,"auth":`...)
		b = appendAuth(b, e.Auth)
	}
	var err error
	if r := e.Request; r != nil {
		b = append(b, `,"request":`...)
		if b, err = appendRequest(b, r); err != nil {
			return nil, err
		}
	}
	if r := e.Response; r != nil {
		b = append(b, `,"response":`...)
		if b, err = appendResponse(b, r); err != nil {
			return nil, err
		}
	}
	if e.Error != "" {
		b = append(b, `,"error":`...)
		b = appendString(b, e.Error)
	}
	if v := e.Vigil; v != nil {
		b = append(b, `,"vigil":`...)
		b = appendVigil(b, v)
	}
	return append(b, '}'), nil
}

// obj writes members with omitempty semantics.
type obj struct {
	b     []byte
	first bool
}

func newObj(b []byte) *obj { return &obj{b: append(b, '{'), first: true} }

func (o *obj) key(k string) {
	if !o.first {
		o.b = append(o.b, ',')
	}
	o.first = false
	o.b = append(o.b, '"')
	o.b = append(o.b, k...)
	o.b = append(o.b, '"', ':')
}

func (o *obj) str(k, v string) {
	if v != "" {
		o.key(k)
		o.b = appendString(o.b, v)
	}
}

func (o *obj) int(k string, v int64) {
	if v != 0 {
		o.key(k)
		o.b = strconv.AppendInt(o.b, v, 10)
	}
}

func (o *obj) strs(k string, v []string) {
	if len(v) > 0 {
		o.key(k)
		o.b = appendStrings(o.b, v)
	}
}

func (o *obj) strMap(k string, m map[string]string) {
	if len(m) > 0 {
		o.key(k)
		o.b = appendStringMap(o.b, m)
	}
}

func (o *obj) end() []byte { return append(o.b, '}') }

func appendAuth(b []byte, a *Auth) []byte {
	o := newObj(b)
	o.str("client_token", a.ClientToken)
	o.str("accessor", a.Accessor)
	o.str("display_name", a.DisplayName)
	o.strs("policies", a.Policies)
	o.strs("token_policies", a.TokenPolicies)
	o.strs("identity_policies", a.IdentityPolicies)
	if pr := a.PolicyResults; pr != nil {
		o.key("policy_results")
		o.b = append(o.b, `{"allowed":`...)
		o.b = strconv.AppendBool(o.b, pr.Allowed)
		if len(pr.GrantingPolicies) > 0 {
			o.b = append(o.b, `,"granting_policies":[`...)
			for i, g := range pr.GrantingPolicies {
				if i > 0 {
					o.b = append(o.b, ',')
				}
				p := newObj(o.b)
				p.str("name", g.Name)
				p.str("namespace_id", g.NamespaceID)
				p.str("namespace_path", g.NamespacePath)
				p.key("type")
				p.b = appendString(p.b, g.Type)
				o.b = p.end()
			}
			o.b = append(o.b, ']')
		}
		o.b = append(o.b, '}')
	}
	o.strMap("metadata", a.Metadata)
	o.str("entity_id", a.EntityID)
	o.str("token_type", a.TokenType)
	o.int("token_ttl", a.TokenTTL)
	o.str("token_issue_time", a.TokenIssueTime)
	o.int("num_uses", int64(a.NumUses))
	o.int("remaining_uses", int64(a.RemainingUses))
	return o.end()
}

func appendRequest(b []byte, r *Request) ([]byte, error) {
	o := newObj(b)
	o.str("id", r.ID)
	o.str("operation", r.Operation)
	o.str("mount_type", r.MountType)
	o.str("mount_point", r.MountPoint)
	o.str("mount_accessor", r.MountAccessor)
	o.str("mount_class", r.MountClass)
	o.str("client_token", r.ClientToken)
	o.str("client_token_accessor", r.ClientTokenAccessor)
	if r.Namespace != nil {
		o.key("namespace")
		o.b = append(o.b, `{"id":`...)
		o.b = appendString(o.b, r.Namespace.ID)
		if r.Namespace.Path != "" {
			o.b = append(o.b, `,"path":`...)
			o.b = appendString(o.b, r.Namespace.Path)
		}
		o.b = append(o.b, '}')
	}
	o.str("path", r.Path)
	if len(r.Data) > 0 {
		o.key("data")
		var err error
		if o.b, err = appendValue(o.b, r.Data); err != nil {
			return nil, err
		}
	}
	o.str("remote_address", r.RemoteAddr)
	o.int("remote_port", int64(r.RemotePort))
	if len(r.Headers) > 0 {
		o.key("headers")
		keys := sortedKeys(r.Headers)
		o.b = append(o.b, '{')
		for i, k := range keys {
			if i > 0 {
				o.b = append(o.b, ',')
			}
			o.b = appendString(o.b, k)
			o.b = append(o.b, ':')
			if r.Headers[k] == nil {
				o.b = append(o.b, "null"...)
			} else {
				o.b = appendStrings(o.b, r.Headers[k])
			}
		}
		o.b = append(o.b, '}')
	}
	return o.end(), nil
}

func appendResponse(b []byte, r *Response) ([]byte, error) {
	o := newObj(b)
	o.str("mount_type", r.MountType)
	o.str("mount_point", r.MountPoint)
	o.str("mount_accessor", r.MountAccessor)
	o.str("mount_class", r.MountClass)
	if r.Auth != nil {
		o.key("auth")
		o.b = appendAuth(o.b, r.Auth)
	}
	if r.Secret != nil {
		o.key("secret")
		o.b = append(o.b, `{"lease_id":`...)
		o.b = appendString(o.b, r.Secret.LeaseID)
		o.b = append(o.b, '}')
	}
	if len(r.Data) > 0 {
		o.key("data")
		var err error
		if o.b, err = appendValue(o.b, r.Data); err != nil {
			return nil, err
		}
	}
	o.strs("warnings", r.Warnings)
	if w := r.WrapInfo; w != nil {
		o.key("wrap_info")
		o.b = append(o.b, `{"ttl":`...)
		o.b = strconv.AppendInt(o.b, int64(w.TTL), 10)
		for _, kv := range [][2]string{{"token", w.Token}, {"accessor", w.Accessor}, {"creation_time", w.CreationTime}, {"creation_path", w.CreationPath}} {
			o.b = append(o.b, `,"`...)
			o.b = append(o.b, kv[0]...)
			o.b = append(o.b, `":`...)
			o.b = appendString(o.b, kv[1])
		}
		if w.WrappedAccessor != "" {
			o.b = append(o.b, `,"wrapped_accessor":`...)
			o.b = appendString(o.b, w.WrappedAccessor)
		}
		o.b = append(o.b, '}')
	}
	return o.end(), nil
}

func appendVigil(b []byte, v *Vigil) []byte {
	o := newObj(b)
	o.strs("deny_reasons", v.DenyReasons)
	o.strs("advisories", v.Advisories)
	o.strMap("flags", v.Flags)
	o.str("policy_error", v.PolicyError)
	o.str("actor", v.Actor)
	if id := v.Identity; id != nil {
		o.key("identity")
		io := newObjV(o.b)
		io.str("actor", id.Actor)
		io.str("entity_name", id.EntityName)
		io.str("alias", id.Alias)
		io.strs("groups", id.Groups)
		io.str("creator_entity_id", id.CreatorEntityID)
		io.str("creator_accessor", id.CreatorAccessor)
		o.b = io.end()
	}
	if v.Sealed {
		o.key("sealed")
		o.b = append(o.b, "true"...)
	}
	o.int("status", int64(v.Status))
	o.str("error_code", v.ErrorCode)
	o.int("request_raw_bytes", int64(v.RequestRawBytes))
	o.int("response_raw_bytes", int64(v.ResponseRawBytes))
	o.strMap("facts", v.Facts)
	return o.end()
}

func appendStrings(b []byte, v []string) []byte {
	b = append(b, '[')
	for i, s := range v {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

func appendStringMap(b []byte, m map[string]string) []byte {
	b = append(b, '{')
	for i, k := range sortedKeys(m) {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = appendString(b, m[k])
	}
	return append(b, '}')
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// appendValue encodes the JSON-shaped values data maps hold after hashing;
// anything else (floats, structs, typed maps) goes through encoding/json.
func appendValue(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendString(b, x), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case int:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case json.Number:
		if x == "" {
			return append(b, '0'), nil
		}
		if !isValidNumber(string(x)) {
			break // let encoding/json report it
		}
		return append(b, x...), nil
	case map[string]any:
		if x == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '{')
		for i, k := range sortedKeys(x) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			var err error
			if b, err = appendValue(b, x[k]); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	case []any:
		if x == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendValue(b, e); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case []string:
		if x == nil {
			return append(b, "null"...), nil
		}
		return appendStrings(b, x), nil
	case map[string]string:
		if x == nil {
			return append(b, "null"...), nil
		}
		return appendStringMap(b, x), nil
	}
	enc, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, enc...), nil
}

const hexDigits = "0123456789abcdef"

// safeASCII marks the ASCII bytes encoding/json writes unescaped.
var safeASCII = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendString quotes s exactly as encoding/json does (HTML-safe: <, >
// and & escaped; U+2028, U+2029 escaped; invalid UTF-8 as U+FFFD).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if safeASCII[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// isValidNumber reports whether s is a JSON number (encoding/json's rule).
func isValidNumber(s string) bool {
	if s == "" {
		return false
	}
	if s[0] == '-' {
		s = s[1:]
		if s == "" {
			return false
		}
	}
	switch {
	case s[0] == '0':
		s = s[1:]
	case '1' <= s[0] && s[0] <= '9':
		s = s[1:]
		for len(s) > 0 && '0' <= s[0] && s[0] <= '9' {
			s = s[1:]
		}
	default:
		return false
	}
	if len(s) >= 2 && s[0] == '.' && '0' <= s[1] && s[1] <= '9' {
		s = s[2:]
		for len(s) > 0 && '0' <= s[0] && s[0] <= '9' {
			s = s[1:]
		}
	}
	if len(s) >= 2 && (s[0] == 'e' || s[0] == 'E') {
		s = s[1:]
		if s[0] == '+' || s[0] == '-' {
			s = s[1:]
			if s == "" {
				return false
			}
		}
		for len(s) > 0 && '0' <= s[0] && s[0] <= '9' {
			s = s[1:]
		}
	}
	return s == ""
}
