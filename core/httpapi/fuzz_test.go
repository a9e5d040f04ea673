package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/vigilsec/vigil/core"
)

// FuzzValidatePath: any path is either accepted, and then has no empty,
// "." or ".." segment and no control character, or refused with a
// CodeInvalid error that names the problem. Never a panic.
func FuzzValidatePath(f *testing.F) {
	for _, s := range []string{"secret/data/a", "secret/data/a/", "", "/", "a//b", "a/./b", "a/../b", "..", ".", "a/..",
		"a\x00b", "a\nb", "a\x7fb", "%2e%2e/x", "sys/mounts", "a/b/c/d/e/f/g", "\xff\xfe", "ünïcödé/ключ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		err := ValidatePath(p)
		if err != nil {
			if core.CodeOf(err) != core.CodeInvalid {
				t.Fatalf("ValidatePath(%q): code %q, want invalid", p, core.CodeOf(err))
			}
			if !strings.Contains(err.Error(), "path") {
				t.Fatalf("ValidatePath(%q) = %q: does not name the problem", p, err)
			}
			return
		}
		if p == "" || strings.Contains(p, "//") {
			t.Fatalf("ValidatePath accepted %q", p)
		}
		for _, seg := range strings.Split(strings.TrimSuffix(p, "/"), "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("ValidatePath accepted the relative segment in %q", p)
			}
		}
		for _, c := range p {
			if c < 0x20 || c == 0x7f {
				t.Fatalf("ValidatePath accepted a control character in %q", p)
			}
		}
	})
}

// FuzzDecodeJSONObject: any body is either one JSON object (which encodes
// back to JSON that decodes to the same value) or null, or refused with a
// CodeInvalid error saying the JSON could not be parsed. Never a panic.
func FuzzDecodeJSONObject(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1}`, `{"a":1.5e300,"b":[1,"x",null,true],"c":{"d":{}}}`, `null`, `[]`, `"s"`, `1`,
		`{"a":1}{"b":2}`, `{"a":1} x`, `{"a":`, `{"a":1,"a":2}`, `{"n":123456789012345678901234567890}`, `{"s":"\ud800"}`,
		"{\"s\":\"\xff\"}", strings.Repeat("[", 20000), strings.Repeat(`{"a":`, 5000) + "1" + strings.Repeat("}", 5000), ` {"a" : 1 } `, "\ufeff{}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeJSONObject(b)
		if err != nil {
			if core.CodeOf(err) != core.CodeInvalid || !strings.HasPrefix(core.ClientMessage(err), "failed to parse JSON input") {
				t.Fatalf("DecodeJSONObject(%q): %v (code %q)", b, err, core.CodeOf(err))
			}
			return
		}
		if m == nil {
			return // null
		}
		out, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("decoded object does not encode: %v", err)
		}
		m2, err := DecodeJSONObject(out)
		if err != nil {
			t.Fatalf("re-encoded object does not decode: %v (%s)", err, out)
		}
		out2, _ := json.Marshal(m2)
		if !bytes.Equal(out, out2) {
			t.Fatalf("round trip changed the object: %s != %s", out, out2)
		}
	})
}

// echo is a core handler that answers every request with its data.
type echo struct{}

func (echo) Handle(_ context.Context, req *core.Request) (*core.Response, error) {
	return &core.Response{Data: map[string]any{"path": req.Path, "op": string(req.Operation), "data": req.Data}}, nil
}

// FuzzHTTPEntry drives the HTTP entry point with arbitrary request lines,
// headers and bodies, as net/http parses them off the wire. Whatever the
// input, the answer is a success or a 4xx whose body names the problem:
// never a 5xx, a panic, or a handler that does not return.
func FuzzHTTPEntry(f *testing.F) {
	type seed struct{ method, target, ctype, body string }
	for _, s := range []seed{
		{"GET", "/v1/secret/data/a", "", ""},
		{"POST", "/v1/secret/data/a", "application/json", `{"data":{"k":"v"}}`},
		{"PUT", "/v1/secret/data/a", "", `{"a":`},
		{"POST", "/v1/secret/data/a", "", `[1,2]`},
		{"POST", "/v1/secret/data/a", "", strings.Repeat("x", 5000)},
		{"LIST", "/v1/secret/metadata", "", ""},
		{"GET", "/v1/secret/metadata?list=true&list=false", "", ""},
		{"PATCH", "/v1/secret/data/a", "application/json", `{}`},
		{"PATCH", "/v1/secret/data/a", "application/merge-patch+json", `{"data":{"k":null}}`},
		{"DELETE", "/v1/a/../b", "", ""},
		{"GET", "/v1/a/%2e%2e/b", "", ""},
		{"GET", "/v1/a%2fb", "", ""},
		{"GET", "/v1/a%5cb", "", ""},
		{"GET", "/v1/a%00b", "", ""},
		{"GET", "/v1//a", "", ""},
		{"GET", "/v1/", "", ""},
		{"GET", "/v1", "", ""},
		{"GET", "/", "", ""},
		{"GET", "/v2/x", "", ""},
		{"BREW", "/v1/coffee", "", ""},
		{"HEAD", "/v1/sys/health", "", ""},
		{"OPTIONS", "/v1/sys/health", "", ""},
		{"GET", "/v1/pki/ocsp/MEIwQDA%2BMDwwOjAJBgUrDgMCGgUABBQ", "", ""},
		{"POST", "/v1/pki/ocsp", "application/ocsp-request", "\x30\x03\x02\x01\x00"},
		{"POST", "/v1/sys/storage/raft/snapshot", "", "not a snapshot"},
		{"GET", "/v1/x?%zz=1&a=%", "", ""},
		{"GET", "http://evil/v1/secret/data/a", "", ""},
		{"GET", "*", "", ""},
	} {
		f.Add(s.method, s.target, s.ctype, s.body)
	}
	h := New(echo{}, Options{MaxRequestSize: 4096, MaxRawSize: 4096})
	f.Fuzz(func(t *testing.T, method, target, ctype, body string) {
		var raw bytes.Buffer
		fmt.Fprintf(&raw, "%s %s HTTP/1.1\r\nHost: vigil\r\nX-Vault-Token: t\r\n", method, target)
		if ctype != "" {
			fmt.Fprintf(&raw, "Content-Type: %s\r\n", ctype)
		}
		fmt.Fprintf(&raw, "Content-Length: %d\r\n\r\n%s", len(body), body)
		r, err := http.ReadRequest(bufio.NewReader(&raw))
		if err != nil {
			return // net/http answers 400 itself; Vigil never sees it
		}
		r.RemoteAddr = "192.0.2.1:1234"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("%s %q (%q, %d bytes): %d %s", method, target, ctype, len(body), w.Code, w.Body)
		}
		if w.Code >= 400 && w.Code != http.StatusNotFound {
			var eb struct {
				Errors []string `json:"errors"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &eb); err != nil || len(eb.Errors) == 0 || eb.Errors[0] == "" {
				t.Fatalf("%s %q: %d with a body that names no problem: %q", method, target, w.Code, w.Body)
			}
			if !utf8.ValidString(eb.Errors[0]) {
				t.Fatalf("error message is not UTF-8: %q", eb.Errors[0])
			}
		}
	})
}
