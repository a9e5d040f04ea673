// Package oidctest plays a person's browser against the OpenID provider
// the tests run (the example OP of github.com/zitadel/oidc/v3, started by
// .ci/services/oidc.sh): open the authorization URL, fill the provider's
// login form, follow the redirects back to the client.
package oidctest

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

var formID = regexp.MustCompile(`name="id" value="([^"]+)"`)

// Authorize opens authURL at the provider, logs in as user, and follows
// redirects. When follow is false it stops at the first redirect to a
// .../oidc/callback URL and returns it (with code and state) unvisited;
// when true it visits it too (a CLI's local listener) and returns it once
// that answered 200.
func Authorize(tb testing.TB, authURL, user, password string, follow bool) *url.URL {
	tb.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		tb.Fatal(err)
	}
	var back *url.URL
	hc := &http.Client{Jar: jar, Timeout: 60 * time.Second, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if strings.HasSuffix(req.URL.Path, "/oidc/callback") {
			back = req.URL
			if !follow {
				return http.ErrUseLastResponse
			}
		}
		return nil
	}}
	resp, err := hc.Get(authURL)
	if err != nil {
		tb.Fatalf("provider authorization endpoint: %v", err)
	}
	page := readAll(resp)
	m := formID.FindStringSubmatch(page)
	if m == nil {
		tb.Fatalf("no login form at %s (HTTP %d):\n%s", resp.Request.URL, resp.StatusCode, page)
	}
	formURL := resp.Request.URL.ResolveReference(&url.URL{Path: "/login/username"})
	resp, err = hc.PostForm(formURL.String(), url.Values{"id": {m[1]}, "username": {user}, "password": {password}})
	if err != nil {
		tb.Fatalf("provider login form (or the callback): %v", err)
	}
	body := readAll(resp)
	if back == nil {
		tb.Fatalf("the provider did not redirect back after the login (HTTP %d):\n%s", resp.StatusCode, body)
	}
	if back.Query().Get("code") == "" {
		tb.Fatalf("redirect without a code: %s", back)
	}
	if follow && resp.StatusCode != http.StatusOK {
		tb.Fatalf("the callback answered HTTP %d:\n%s", resp.StatusCode, body)
	}
	return back
}

func readAll(resp *http.Response) string {
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return string(b)
}
