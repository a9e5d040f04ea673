package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core"
)

func TestWrapTTLHeader(t *testing.T) {
	for _, c := range []struct {
		ttl, format string
		want        time.Duration
		ok          bool
	}{
		{"", "", 0, true},
		{"300", "", 5 * time.Minute, true},
		{"5m", "token", 5 * time.Minute, true},
		{"0", "", 0, true},
		{"1h30m", "", 90 * time.Minute, true},
		{"-5", "", 0, false},
		{"soon", "", 0, false},
		{"60", "jwt", 0, false},
	} {
		h := http.Header{}
		if c.ttl != "" {
			h.Set("X-Vault-Wrap-TTL", c.ttl)
		}
		if c.format != "" {
			h.Set("X-Vault-Wrap-Format", c.format)
		}
		got, err := WrapTTL(h)
		if (err == nil) != c.ok || got != c.want || (err != nil && core.CodeOf(err) != core.CodeInvalid) {
			t.Errorf("%q %q: %s %v, want %s ok=%v", c.ttl, c.format, got, err, c.want, c.ok)
		}
	}
}

type wrapHandler struct{ got *core.Request }

func (w *wrapHandler) Handle(_ context.Context, req *core.Request) (*core.Response, error) {
	w.got = req
	return &core.Response{Data: map[string]any{"secret": "s"}, Auth: &core.Auth{ClientToken: "hvs.x"}, Secret: &core.Secret{LeaseID: "l/1"},
		Bare: true, WrapInfo: &core.WrapInfo{Token: "hvs.w", Accessor: "a", TTL: 60, CreationPath: "secret/data/x"}}, nil
}

// TestWrappedResponseBody: whatever else a wrapped response carries (kept
// for the audit entry), the client gets Vault's envelope with wrap_info only.
func TestWrappedResponseBody(t *testing.T) {
	h := &wrapHandler{}
	srv := httptest.NewServer(New(h, Options{}))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/secret/data/x", nil)
	req.Header.Set("X-Vault-Wrap-TTL", "1m")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if h.got.WrapTTL != time.Minute {
		t.Fatalf("request WrapTTL %s", h.got.WrapTTL)
	}
	wi, _ := body["wrap_info"].(map[string]any)
	if resp.StatusCode != 200 || body["data"] != nil || body["auth"] != nil || body["lease_id"] != "" || wi["token"] != "hvs.w" || wi["creation_path"] != "secret/data/x" {
		t.Fatalf("%d %v", resp.StatusCode, body)
	}
}
