package system_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"
)

// sys/config/cors through vault/api, and what a browser then sees: a
// preflight answered with the allowed methods and headers, the allowed
// origin echoed, another origin refused, nothing changed without Origin.
func TestSysConfigCORS(t *testing.T) {
	s := devServer(t)
	c := s.Client
	st, err := c.Sys().CORSStatus()
	if err != nil || st.Enabled {
		t.Fatalf("initial CORS: %+v %v", st, err)
	}
	send := func(method, origin string, hdr map[string]string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, s.URL+"/v1/sys/health", nil)
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if r := send(http.MethodGet, "https://ui.example", nil); r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("CORS headers while CORS is disabled")
	}

	if err := c.Sys().ConfigureCORS(&vaultapi.CORSRequest{AllowedOrigins: []string{"https://ui.example"}, AllowedHeaders: []string{"X-Custom"}}); err != nil {
		t.Fatal(err)
	}
	st, err = c.Sys().CORSStatus()
	if err != nil || !st.Enabled || !slices.Equal(st.AllowedOrigins, []string{"https://ui.example"}) ||
		!slices.Contains(st.AllowedHeaders, "X-Custom") || !slices.Contains(st.AllowedHeaders, "X-Vault-Token") {
		t.Fatalf("CORS status: %+v %v", st, err)
	}

	pre := send(http.MethodOptions, "https://ui.example", map[string]string{"Access-Control-Request-Method": "GET"})
	if pre.StatusCode != 200 || pre.Header.Get("Access-Control-Allow-Origin") != "https://ui.example" ||
		!strings.Contains(pre.Header.Get("Access-Control-Allow-Methods"), "LIST") ||
		!strings.Contains(pre.Header.Get("Access-Control-Allow-Headers"), "X-Custom") {
		t.Fatalf("preflight: %d %v", pre.StatusCode, pre.Header)
	}
	if r := send(http.MethodGet, "https://ui.example", nil); r.StatusCode != 200 || r.Header.Get("Access-Control-Allow-Origin") != "https://ui.example" {
		t.Fatalf("allowed origin: %d %v", r.StatusCode, r.Header)
	}
	if r := send(http.MethodGet, "https://evil.example", nil); r.StatusCode != 403 {
		t.Fatalf("other origin: %d", r.StatusCode)
	}
	if r := send(http.MethodGet, "", nil); r.StatusCode != 200 || r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("no origin: %d %v", r.StatusCode, r.Header)
	}

	if err := c.Sys().DisableCORS(); err != nil {
		t.Fatal(err)
	}
	if r := send(http.MethodGet, "https://evil.example", nil); r.StatusCode != 200 {
		t.Fatalf("after disabling: %d", r.StatusCode)
	}
	if err := c.Sys().ConfigureCORS(&vaultapi.CORSRequest{AllowedOrigins: []string{"*", "https://x"}}); statusOf(err) != 400 {
		t.Fatalf("'*' with other origins: %v", err)
	}
}
