package vault

import (
	"encoding/json"
	"sort"
	"time"

	"github.com/vigilsec/vigil/audit/hmac"
	"github.com/vigilsec/vigil/core"
)

// appendEvent appends exactly appendEntry(Build(ev, o)) to b (the
// differential tests in direct_test.go hold it to that), without building
// the Entry: HMACs are appended in place instead of becoming strings, data
// maps are hashed while they are encoded instead of being copied first, and
// the caller's token and accessor are hashed once per entry although each
// appears twice. Rare parts (a response's auth, wrap info, headers) go
// through the Entry code.
func appendEvent(b []byte, ev *core.AuditEvent, o Options) ([]byte, error) {
	if ev == nil || ev.Request == nil {
		return nil, ErrNoRequest
	}
	req := ev.Request
	f := formatter{o: o, omit: o.Salt == nil && !o.Raw}
	typ := ev.Type
	if typ != "response" {
		typ = "request"
	}
	b = append(b, `{"time":"`...)
	b = ev.Time.UTC().AppendFormat(b, time.RFC3339Nano) // never needs escaping
	b = append(b, `","type":`...)
	b = appendString(b, typ)

	// The caller's token and accessor, hashed once for auth and request.
	var tokBuf, accBuf [hmac.HashLen]byte
	var tok, acc []byte
	p := req.Principal
	if p != nil {
		tok = f.appendToken(tokBuf[:0], p.ClientToken)
		acc = f.appendAccessor(accBuf[:0], p.Accessor)
	}

	b = append(b, `,"auth":`...)
	b = f.appendCallerAuth(b, req, tok, acc)

	b = append(b, `,"request":`...)
	o2 := newObjV(b)
	clearTok, clearAcc := f.o.Raw, f.o.Raw || !f.o.HMACAccessor
	o2.str("id", req.ID)
	o2.str("operation", string(req.Operation))
	if m := req.Mount; m != nil {
		o2.str("mount_type", m.Type)
		o2.str("mount_point", m.Path)
		o2.str("mount_accessor", m.Accessor)
		o2.str("mount_class", m.Class)
	}
	if p != nil {
		o2.tokenStr("client_token", tok, clearTok)
		o2.tokenStr("client_token_accessor", acc, clearAcc)
	} else if !req.Internal {
		var buf [hmac.HashLen]byte
		o2.tokenStr("client_token", f.appendToken(buf[:0], req.ClientToken), clearTok)
	}
	o2.key("namespace")
	if ns := req.NS(); ns.IsRoot() {
		o2.b = append(o2.b, `{"id":"root"}`...)
	} else {
		o2.b = append(o2.b, `{"id":`...)
		o2.b = appendString(o2.b, ns.ID)
		o2.b = append(o2.b, `,"path":`...)
		o2.b = appendString(o2.b, ns.Path)
		o2.b = append(o2.b, '}')
	}
	o2.str("path", req.Path)
	var skip []string
	if m := req.Mount; m != nil {
		skip = m.Config.AuditNonHMACRequestKeys
	}
	if err := f.appendData(&o2, "data", req.Data, skip); err != nil {
		return nil, err
	}
	o2.str("remote_address", req.RemoteAddr)
	o2.int("remote_port", int64(req.RemotePort))
	if h := f.headers(req.Headers); len(h) > 0 {
		o2.key("headers")
		o2.b = appendHeaders(o2.b, h)
	}
	b = o2.end()

	if typ == "response" {
		b = append(b, `,"response":`...)
		var err error
		if b, err = f.appendResponse(b, req, ev.Response); err != nil {
			return nil, err
		}
	}
	if ev.Err != nil {
		if msg := ev.Err.Error(); msg != "" {
			b = append(b, `,"error":`...)
			b = appendString(b, msg)
		}
	}
	if v := f.vigilOf(ev, typ); !v.empty() {
		b = append(b, `,"vigil":`...)
		b = appendVigil(b, &v)
	}
	return append(b, '}'), nil
}

// newObjV is newObj without the heap allocation.
func newObjV(b []byte) obj { return obj{b: append(b, '{'), first: true} }

// raw writes a member whose value v is a string known to need no escaping
// (an HMAC, or "" for none).
func (o *obj) raw(k string, v []byte) {
	if len(v) > 0 {
		o.key(k)
		o.b = append(o.b, '"')
		o.b = append(o.b, v...)
		o.b = append(o.b, '"')
	}
}

// appendToken appends what formatter.token returns for s: nothing, the
// clear text (log_raw; it may need escaping) or its HMAC.
func (f formatter) appendToken(dst []byte, s string) []byte {
	switch {
	case s == "" || f.omit:
		return dst
	case f.o.Raw:
		return append(dst, s...)
	}
	return f.o.Salt.AppendHash(dst, s)
}

// appendAccessor appends what formatter.accessor returns for s.
func (f formatter) appendAccessor(dst []byte, s string) []byte {
	switch {
	case s == "":
		return dst
	case f.o.Raw || !f.o.HMACAccessor:
		return append(dst, s...)
	case f.omit:
		return dst
	}
	return f.o.Salt.AppendHash(dst, s)
}

func (f formatter) appendCallerAuth(b []byte, req *core.Request, tok, acc []byte) []byte {
	o := newObjV(b)
	if p := req.Principal; p != nil {
		o.tokenStr("client_token", tok, f.o.Raw)
		o.tokenStr("accessor", acc, f.o.Raw || !f.o.HMACAccessor)
		o.str("display_name", p.DisplayName)
		o.strs("policies", p.Policies)
		o.strs("token_policies", p.TokenPolicies)
		if p.Identity != nil {
			o.strs("identity_policies", p.Identity.Policies)
		}
	} else if req.Internal {
		o.str("display_name", req.InternalActor)
	}
	if d := req.Decision; d != nil {
		o.key("policy_results")
		o.b = append(o.b, `{"allowed":`...)
		if d.Allowed {
			o.b = append(o.b, "true"...)
		} else {
			o.b = append(o.b, "false"...)
		}
		if len(d.GrantingPolicies) > 0 {
			o.b = append(o.b, `,"granting_policies":[`...)
			for i, g := range d.GrantingPolicies {
				if i > 0 {
					o.b = append(o.b, ',')
				}
				p := newObjV(o.b)
				p.str("name", g.Name)
				p.str("namespace_id", policyNamespace(g))
				p.str("namespace_path", g.NamespacePath)
				p.key("type")
				p.b = appendString(p.b, g.Type)
				o.b = p.end()
			}
			o.b = append(o.b, ']')
		}
		o.b = append(o.b, '}')
	}
	if p := req.Principal; p != nil {
		o.strMap("metadata", p.Metadata)
		o.str("entity_id", p.EntityID)
		o.str("token_type", p.TokenType)
		o.int("token_ttl", int64(p.TTL/time.Second))
		if !p.IssueTime.IsZero() {
			o.key("token_issue_time")
			o.b = append(o.b, '"')
			o.b = p.IssueTime.UTC().AppendFormat(o.b, time.RFC3339) // never needs escaping
			o.b = append(o.b, '"')
		}
		if p.NumUsesLeft > 0 {
			o.int("remaining_uses", int64(p.NumUsesLeft))
		}
	}
	return o.end()
}

// tokenStr writes a token or accessor member: v is clear text when clear
// is set (it may then need escaping), else an HMAC.
func (o *obj) tokenStr(k string, v []byte, clear bool) {
	if len(v) == 0 {
		return
	}
	if clear {
		o.key(k)
		o.b = appendStringBytes(o.b, v)
		return
	}
	o.raw(k, v)
}

func (f formatter) appendResponse(b []byte, req *core.Request, resp *core.Response) ([]byte, error) {
	o := newObjV(b)
	var skip []string
	if m := req.Mount; m != nil {
		o.str("mount_type", m.Type)
		o.str("mount_point", m.Path)
		o.str("mount_accessor", m.Accessor)
		o.str("mount_class", m.Class)
		skip = m.Config.AuditNonHMACResponseKeys
	}
	if resp == nil {
		return o.end(), nil
	}
	// The rare members go through the Entry code.
	r := &Response{}
	if resp.Auth != nil || resp.WrapInfo != nil {
		r = f.response(req, &core.Response{Auth: resp.Auth, WrapInfo: resp.WrapInfo})
	}
	if r.Auth != nil {
		o.key("auth")
		o.b = appendAuth(o.b, r.Auth)
	}
	if resp.Secret != nil && resp.Secret.LeaseID != "" {
		o.key("secret")
		o.b = append(o.b, `{"lease_id":`...)
		o.b = appendString(o.b, resp.Secret.LeaseID)
		o.b = append(o.b, '}')
	}
	if err := f.appendData(&o, "data", resp.Data, skip); err != nil {
		return nil, err
	}
	if len(resp.Warnings) > 0 {
		o.strs("warnings", resp.Warnings)
	}
	if r.WrapInfo != nil {
		// appendResponse writes wrap_info last; reuse it on an object
		// holding only that member.
		tail, _ := appendResponse(nil, &Response{WrapInfo: r.WrapInfo})
		o.key("wrap_info")
		o.b = append(o.b, tail[len(`{"wrap_info":`):len(tail)-1]...)
	}
	return o.end(), nil
}

// appendData writes member k for a data map as formatter.data and the
// encoders would: omitted when empty or when there is no salt, verbatim
// with log_raw, else hashed (top-level keys in skip kept).
func (f formatter) appendData(o *obj, k string, d map[string]any, skip []string) error {
	if len(d) == 0 || f.omit {
		return nil
	}
	o.key(k)
	var b []byte
	var err error
	if f.o.Raw {
		b, err = appendValue(o.b, d)
	} else {
		b, err = appendHashedMap(o.b, f.o.Salt, d, skip)
	}
	if err != nil {
		return err
	}
	o.b = b
	return nil
}

// appendHashedMap appends appendValue(s.Data(d, skip)) for a non-nil d.
func appendHashedMap(b []byte, s *hmac.Salt, d map[string]any, skip []string) ([]byte, error) {
	var arr [16]string
	keys := arr[:0]
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b = append(b, '{')
	var err error
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		if contains(skip, k) {
			b, err = appendValue(b, d[k])
		} else {
			b, err = appendHashed(b, s, d[k])
		}
		if err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// appendHashed appends appendValue(s.Value(v)).
func appendHashed(b []byte, s *hmac.Salt, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil, bool, json.Number, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64:
		return appendValue(b, x) // Value keeps these as they are
	case string:
		return appendHashString(b, s, x), nil
	case map[string]any:
		if x == nil {
			return append(b, "null"...), nil // Data(nil) is a nil map
		}
		return appendHashedMap(b, s, x, nil)
	case []any: // Value makes a non-nil slice: never null
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendHashed(b, s, e); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case []string: // idem
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendHashString(b, s, e)
		}
		return append(b, ']'), nil
	case map[string]string: // Value makes a non-nil map: never null
		b = append(b, '{')
		for i, k := range sortedKeys(x) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendHashString(b, s, x[k])
		}
		return append(b, '}'), nil
	case time.Time:
		var tb [64]byte
		return appendHashString(b, s, string(x.AppendFormat(tb[:0], time.RFC3339Nano))), nil
	}
	return appendValue(b, s.Value(v))
}

// appendHashString appends the JSON string of s.Hash(in) (which never needs
// escaping).
func appendHashString(b []byte, s *hmac.Salt, in string) []byte {
	b = append(b, '"')
	b = s.AppendHash(b, in)
	return append(b, '"')
}

func appendHeaders(b []byte, h map[string][]string) []byte {
	b = append(b, '{')
	for i, k := range sortedKeys(h) {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		if h[k] == nil {
			b = append(b, "null"...)
		} else {
			b = appendStrings(b, h[k])
		}
	}
	return append(b, '}')
}

// appendStringBytes is appendString for bytes.
func appendStringBytes(b []byte, s []byte) []byte { return appendString(b, string(s)) }

func contains(list []string, k string) bool {
	for _, s := range list {
		if s == k {
			return true
		}
	}
	return false
}
