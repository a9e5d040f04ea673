package vault

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/audit/hmac"
	"github.com/vigilsec/vigil/core"
)

// reference is the straightforward rendering appendEvent must reproduce
// byte for byte: build the Entry, then encode it.
func reference(ev *core.AuditEvent, o Options) ([]byte, error) {
	e, err := Build(ev, o)
	if err != nil {
		return nil, err
	}
	return appendEntry(nil, e)
}

func testSalt(t testing.TB) *hmac.Salt {
	s, err := hmac.New([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type stringer struct{ A int }

// allOptions are the option sets every event is rendered with.
func allOptions(t testing.TB) []Options {
	s := testSalt(t)
	return []Options{
		{Salt: s, HMACAccessor: true},
		{Salt: s, HMACAccessor: false, Headers: []string{"X-Forwarded-For", "x-forwarded-for", "User-Agent"}},
		{Raw: true, HMACAccessor: true, Headers: []string{"User-Agent"}},
		{Raw: true, Salt: s},
		{HMACAccessor: true},  // sealed: no salt
		{HMACAccessor: false}, // no salt, clear accessors
	}
}

// directEvents covers every branch of Build: principals or not, internal,
// decisions, mounts with non-HMAC keys, every data type Salt.Value knows
// (and some it does not), responses with auth, secrets, wrap info, raw
// bodies and errors.
func directEvents() []*core.AuditEvent {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.FixedZone("X", 3600))
	mount := &core.MountInfo{Path: "secret/", Type: "kv", Accessor: "kv_1", Class: "secret",
		Config: core.MountConfig{AuditNonHMACRequestKeys: []string{"version", "raw"}, AuditNonHMACResponseKeys: []string{"metadata"}}}
	p := &core.Principal{ClientToken: `hvs."quoted"<&>`, Accessor: "acc\u2028x", DisplayName: "userpass-alice",
		Policies: []string{"default", "phi"}, TokenPolicies: []string{"default"}, Metadata: map[string]string{"u": "alice", "b": "<x>"},
		EntityID: "ent-1", TokenType: "service", TTL: 90 * time.Minute, IssueTime: t0, NumUsesLeft: 3}
	data := map[string]any{
		"s": "str\x00\xff", "n": json.Number("5432"), "bad": json.Number(""), "i": 7, "i8": int8(-3), "u": uint64(1 << 63),
		"f": 1.5, "f32": float32(2.25), "b": true, "nil": nil, "nm": map[string]any(nil), "em": map[string]any{},
		"na": []any(nil), "ea": []any{}, "a": []any{"x", 1, nil, map[string]any{"k": []any{"y", false}}},
		"ns": []string(nil), "ss": []string{"a", "<b>"}, "nms": map[string]string(nil), "ms": map[string]string{"z": "1", "a": "2"},
		"t": t0, "st": stringer{A: 1}, "sp": &stringer{A: 2}, "bs": []byte("raw"), "ints": []int{1, 2},
		"version": "7", "raw": map[string]any{"keep": "me"}, "metadata": map[string]any{"owner": "team"},
		"deep": map[string]any{"l1": map[string]any{"l2": []any{map[string]any{"l3": "v"}}}},
	}
	for i := 0; i < 20; i++ { // more keys than appendHashedMap's stack array
		data[strings.Repeat("k", i+1)] = i
	}
	req := func() *core.Request {
		return &core.Request{ID: "req-1", Operation: core.OpCreate, Path: "secret/data/app", Mount: mount, Principal: p,
			Data: data, RemoteAddr: "10.0.0.1", RemotePort: 5000,
			Headers: http.Header{"User-Agent": {"cli"}, "X-Forwarded-For": {"1.1.1.1", "2.2.2.2"}},
			Decision: &core.Decision{Allowed: true, GrantingPolicies: []core.PolicyRef{{Name: "phi", Type: "acl"}, {Type: "rego"}},
				Advisories: []string{"late"}, Flags: map[string]string{"break_glass": "true"}, DenyReasons: []string{"r"}, Error: "e"}}
	}
	noPrincipal := &core.Request{ID: "r2", Operation: core.OpRead, Path: "sys/x", ClientToken: "hvs.unknown<>", RemoteAddr: "::1",
		Decision: &core.Decision{Allowed: false}}
	internal := &core.Request{ID: "r3", Operation: core.OpRevoke, Path: "database/creds/x", Internal: true, InternalActor: "expiration"}
	internalAnon := &core.Request{ID: "r4", Internal: true, ClientToken: "ignored", RawBody: []byte("12345")}
	empty := &core.Request{}
	// A token with an entity, created by another token.
	ip := *p
	ip.Identity = &core.Identity{EntityID: "ent-1", EntityName: "carol<>", Actor: "carol<>", Alias: "userpass/carol",
		Groups: []string{"icu-clinicians", "all"}, Policies: []string{"icu"}, Metadata: map[string]string{"team": "icu"}}
	ip.CreatorAccessor, ip.CreatorEntityID = "creator-acc", "ent-0"
	withIdentity := req()
	withIdentity.Principal = &ip
	creatorOnly := *p
	creatorOnly.CreatorAccessor = "root-acc"
	withCreator := req()
	withCreator.Principal = &creatorOnly
	login := &core.Request{ID: "r5", Operation: core.OpUpdate, Path: "auth/userpass/login/carol", Unauthenticated: true}
	loginResp := &core.Response{Auth: &core.Auth{ClientToken: "hvs.l", Accessor: "acc-l", Policies: []string{"default", "icu"},
		TokenPolicies: []string{"default"}, IdentityPolicies: []string{"icu"}, EntityID: "ent-1",
		Identity: &core.Identity{EntityID: "ent-1", EntityName: "entity_1", Actor: "userpass/carol", Alias: "userpass/carol"}}}
	full := &core.Response{Data: data, Warnings: []string{"w<1>"}, Secret: &core.Secret{LeaseID: "secret/lease/1"},
		Auth: &core.Auth{ClientToken: "hvs.new", Accessor: "acc-new", DisplayName: "d", Policies: []string{"default"},
			TokenPolicies: []string{"default"}, Metadata: map[string]string{"u": "a"}, EntityID: "e", TokenType: "batch",
			TTL: time.Hour, NumUses: 2},
		WrapInfo: &core.WrapInfo{TTL: 60, Token: "wrap-tok", Accessor: "wrap-acc", CreationTime: t0, CreationPath: "p", WrappedAccessor: "wa"}}
	// A request in a namespace, by a token of that namespace.
	hospA := core.Namespace{ID: "HtLcGY", Path: "hospital-a/"}
	inNS := req()
	inNS.Namespace = &hospA
	nsp := *p
	nsp.Namespace = &hospA
	inNS.Principal = &nsp
	inNS.Mount = &core.MountInfo{Path: "hospital-a/secret/", Type: "kv", Accessor: "kv_2", Class: "secret", NamespaceID: hospA.ID}
	inNS.Decision = &core.Decision{Allowed: true, GrantingPolicies: []core.PolicyRef{{Name: "app", Type: "acl", NamespaceID: hospA.ID, NamespacePath: hospA.Path}}}
	var evs []*core.AuditEvent
	for _, r := range []*core.Request{req(), noPrincipal, internal, internalAnon, empty, withIdentity, withCreator, login, inNS} {
		evs = append(evs,
			&core.AuditEvent{Type: "request", Time: t0, Request: r},
			&core.AuditEvent{Type: "odd", Time: time.Time{}, Request: r, Err: core.ErrPermissionDenied},
			&core.AuditEvent{Type: "response", Time: t0, Request: r},
			&core.AuditEvent{Type: "response", Time: t0, Request: r, Response: full, Err: errors.New("boom \"x\"")},
			&core.AuditEvent{Type: "response", Time: t0, Request: r, Response: &core.Response{StatusCode: 202, Raw: &core.RawBody{Body: []byte("abc")}}},
			&core.AuditEvent{Type: "response", Time: t0, Request: r, Response: &core.Response{Secret: &core.Secret{}, Data: map[string]any{}}},
			&core.AuditEvent{Type: "request", Time: t0, Request: r, Sealed: true, Err: core.ErrSealed},
			&core.AuditEvent{Type: "response", Time: t0, Request: r, Err: errEmpty{}},
			&core.AuditEvent{Type: "response", Time: t0, Request: r, Response: loginResp},
			&core.AuditEvent{Type: "request", Time: t0, Request: r, Response: loginResp},
		)
	}
	return evs
}

type errEmpty struct{}

func (errEmpty) Error() string { return "" }

func checkSame(t *testing.T, ev *core.AuditEvent, o Options) {
	t.Helper()
	want, werr := reference(ev, o)
	got, gerr := appendEvent([]byte("prefix"), ev, o)
	if (werr != nil) != (gerr != nil) {
		t.Fatalf("errors differ: direct %v, reference %v", gerr, werr)
	}
	if werr != nil {
		return
	}
	if !bytes.HasPrefix(got, []byte("prefix")) || !bytes.Equal(got[len("prefix"):], want) {
		t.Fatalf("direct encoder differs from Build+appendEntry:\n got %s\nwant %s", got[len("prefix"):], want)
	}
}

// TestDirectMatchesBuild: Format's direct encoder writes exactly what
// Build followed by the Entry encoder writes, for every option set.
func TestDirectMatchesBuild(t *testing.T) {
	for i, ev := range directEvents() {
		for j, o := range allOptions(t) {
			t.Run("", func(t *testing.T) {
				t.Logf("event %d options %d", i, j)
				checkSame(t, ev, o)
			})
		}
	}
}

// TestDirectErrors: unencodable data fails the same way, and no request
// is ErrNoRequest.
func TestDirectErrors(t *testing.T) {
	for _, v := range []any{math.NaN(), math.Inf(1), func() {}, json.Number("01")} {
		ev := &core.AuditEvent{Type: "response", Request: &core.Request{Data: map[string]any{"x": v}},
			Response: &core.Response{Data: map[string]any{"y": []any{v}}}}
		for _, o := range allOptions(t) {
			checkSame(t, ev, o)
		}
	}
	if _, err := appendEvent(nil, &core.AuditEvent{}, Options{}); !errors.Is(err, ErrNoRequest) {
		t.Fatalf("got %v", err)
	}
	if _, err := appendEvent(nil, nil, Options{}); !errors.Is(err, ErrNoRequest) {
		t.Fatalf("got %v", err)
	}
}

// FuzzDirectMatchesBuild: the same for arbitrary JSON data, strings and
// tokens.
func FuzzDirectMatchesBuild(f *testing.F) {
	f.Add(`{"a":"<b>&\u2028","n":1.5e3,"l":["x",{"y":null}],"t":true,"version":"1"}`, "path/\x00\xff", "tok\"", "err\n", uint8(0))
	f.Add(`{"k":-0,"e":1E+2,"metadata":{"a":[]}}`, "é", "", "", uint8(7))
	f.Fuzz(func(t *testing.T, data, s, tok, errMsg string, flags uint8) {
		var d map[string]any
		dec := json.NewDecoder(strings.NewReader(data))
		dec.UseNumber()
		if dec.Decode(&d) != nil {
			d = map[string]any{"s": data}
		}
		mount := &core.MountInfo{Path: s, Type: s, Config: core.MountConfig{AuditNonHMACRequestKeys: []string{"version"},
			AuditNonHMACResponseKeys: []string{"metadata"}}}
		req := &core.Request{ID: s, Operation: core.OpUpdate, Path: s, Data: d, RemoteAddr: errMsg, ClientToken: tok,
			Internal: flags&8 != 0, InternalActor: s}
		if flags&1 != 0 {
			req.Principal = &core.Principal{ClientToken: tok, Accessor: s, DisplayName: s, Metadata: map[string]string{s: errMsg},
				Policies: []string{s}}
		}
		if flags&2 != 0 {
			req.Mount = mount
		}
		if flags&4 != 0 {
			req.Decision = &core.Decision{Allowed: flags&16 != 0, GrantingPolicies: []core.PolicyRef{{Name: s, Type: tok}}}
		}
		ev := &core.AuditEvent{Type: "response", Time: time.Unix(1, int64(flags)), Request: req,
			Response: &core.Response{Data: d, Warnings: []string{errMsg}, Secret: &core.Secret{LeaseID: s}}}
		if flags&32 != 0 {
			ev.Type = "request"
		}
		if flags&64 != 0 {
			ev.Response.Auth = &core.Auth{ClientToken: tok, Accessor: s}
		}
		if errMsg != "" {
			ev.Err = core.Invalid("%s", errMsg)
		}
		for _, o := range allOptions(t) {
			checkSame(t, ev, o)
		}
	})
}

// BenchmarkFormatDirectVsBuild compares the two renderings of a KV write
// response entry.
func BenchmarkFormatDirectVsBuild(b *testing.B) {
	evs := directEvents()
	ev := evs[3]
	o := allOptions(b)[0]
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 8192)
		for i := 0; i < b.N; i++ {
			if _, err := appendEvent(buf[:0], ev, o); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("build", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := reference(ev, o); err != nil {
				b.Fatal(err)
			}
		}
	})
}
