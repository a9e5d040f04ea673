// Package dashboard is the auditor's workbench, served under /ui/ when the
// server configuration says `ui = true`. It is static HTML, CSS and
// JavaScript embedded in the binary (no CDN, no external resources). The
// auditor signs in with userpass (POST /v1/auth/<mount>/login/<user>),
// OIDC (POST auth/<mount>/oidc/auth_url, the provider's login page, back to
// /ui/oidc/callback, which must be among the role's allowed_redirect_uris)
// or a token, and the page calls the API with
// it (X-Vault-Token): the audit query with every filter, CSV/JSON export
// of the current query, each record in full, a per-day histogram of the
// result (GET /v1/sys/audit/query), the evidence view (GET
// /v1/sys/reports/evidence: chain verification and last checkpoint per
// node), the reports and signed evidence bundles (GET
// /v1/sys/reports/<kind>) and the compliance checks (GET
// /v1/sys/compliance/checks). Every call is audited and authorised like
// any other. Tested in a real headless Chromium (cmd/vigil/itest
// TestWorkbenchInBrowser).
package dashboard

import (
	"bytes"
	"embed"
	"io/fs"
	"net/http"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// csp allows only the page's own scripts and styles (inline styles for the
// reports it previews in a sandboxed blob frame) and calls to this origin.
const csp = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; " +
	"connect-src 'self' blob:; frame-src blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Handler serves the dashboard. Mount it at /ui/ (httpapi.Options.UI): it
// expects request paths that start with /ui/.
func Handler() http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded folder exists at build time
	}
	files := http.FileServer(http.FS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		p := strings.TrimPrefix(r.URL.Path, "/ui")
		if p == "" || p == "/" || p == "/oidc/callback" { // the OIDC provider returns to the page
			p = "/index.html"
		}
		if _, err := fs.Stat(sub, strings.TrimPrefix(p, "/")); err != nil {
			http.NotFound(w, r)
			return
		}
		if p == "/index.html" { // FileServer would redirect it to "/"
			b, err := fs.ReadFile(sub, "index.html")
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			h.Set("Content-Type", "text/html; charset=utf-8")
			http.ServeContent(w, r, "index.html", time.Time{}, bytes.NewReader(b))
			return
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path = p
		files.ServeHTTP(w, r2)
	})
}
