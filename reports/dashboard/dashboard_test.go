package dashboard

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/core/safetext"
)

func get(t *testing.T, h http.Handler, method, path string) *http.Response {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec.Result()
}

func TestServesEmbeddedAssets(t *testing.T) {
	h := Handler()
	for path, ctype := range map[string]string{"/ui/": "text/html", "/ui/index.html": "text/html", "/ui/oidc/callback": "text/html",
		"/ui/app.js": "javascript", "/ui/app.css": "text/css"} {
		resp := get(t, h, http.MethodGet, path)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), ctype) || len(body) == 0 {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "connect-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Fatalf("%s: CSP %q", path, csp)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Fatal("nosniff missing")
		}
	}
	if resp := get(t, h, http.MethodGet, "/ui/missing.js"); resp.StatusCode != 404 {
		t.Fatalf("missing file: %d", resp.StatusCode)
	}
	if resp := get(t, h, http.MethodPost, "/ui/"); resp.StatusCode != 405 {
		t.Fatalf("POST: %d", resp.StatusCode)
	}
}

// The dashboard must not load anything from elsewhere, must only read, and
// must not put server data into the page as HTML.
func TestNoExternalResourcesAndReadOnly(t *testing.T) {
	h := Handler()
	var all strings.Builder
	for _, p := range []string{"/ui/index.html", "/ui/app.js", "/ui/app.css"} {
		b, _ := io.ReadAll(get(t, h, http.MethodGet, p).Body)
		all.Write(b)
	}
	s := all.String()
	if regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/`).MatchString(strings.ReplaceAll(s, "http://www.w3.org", "")) {
		t.Fatal("an external URL is referenced")
	}
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "method:\"POST\"", "\"PUT\"", "\"DELETE\"", "localStorage"} {
		if strings.Contains(s, bad) {
			t.Errorf("dashboard uses %s", bad)
		}
	}
	// The only writes are the sign-ins: a userpass login, and the start
	// of an OIDC login.
	if n := strings.Count(s, `method: "POST"`); n != 2 || !regexp.MustCompile(`"/login/" \+ user, \{ method: "POST"`).MatchString(s) ||
		!regexp.MustCompile(`"/oidc/auth_url", \{ method: "POST"`).MatchString(s) {
		t.Errorf("the dashboard makes %d POST calls; only the sign-ins may", n)
	}
	for _, api := range []string{"sys/compliance/checks", "sys/audit/query", "sys/reports/", "sys/reports/evidence", "X-Vault-Token", "X-Vault-Namespace"} {
		if !strings.Contains(s, api) {
			t.Errorf("dashboard does not call %s", api)
		}
	}
}

// The dashboard escapes exactly what the CLI and the reports escape
// (core/safetext), plus the backslash: its HIDDEN class, read from app.js,
// holds the same characters as safetext.Hidden.
func TestDashboardEscapesWhatSafetextEscapes(t *testing.T) {
	b, _ := io.ReadAll(get(t, Handler(), http.MethodGet, "/ui/app.js").Body)
	m := regexp.MustCompile(`const HIDDEN = /\[([^\]]+)\]/gu;`).FindSubmatch(b)
	if m == nil {
		t.Fatal("HIDDEN not found in app.js")
	}
	if !strings.Contains(string(b), "e.textContent = shown(text)") {
		t.Fatal("el() does not pass text through shown()")
	}
	cp := `\\u(?:\{([0-9a-f]+)\}|([0-9a-f]{4}))`
	re := regexp.MustCompile(cp + `(?:-` + cp + `)?`)
	in := map[rune]bool{}
	for _, r := range re.FindAllStringSubmatch(string(m[1]), -1) {
		parse := func(a, b string) rune {
			v, _ := strconv.ParseUint(a+b, 16, 32)
			return rune(v)
		}
		lo := parse(r[1], r[2])
		hi := lo
		if r[3]+r[4] != "" {
			hi = parse(r[3], r[4])
		}
		for c := lo; c <= hi; c++ {
			in[c] = true
		}
	}
	for r := rune(0); r <= 0x10FFFF; r++ {
		if want := safetext.Hidden(r) || r == '\\'; in[r] != want {
			t.Fatalf("%U: dashboard escapes it %v, safetext %v", r, in[r], want)
		}
	}
}
