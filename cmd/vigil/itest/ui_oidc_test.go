package itest

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/chromedp"

	"github.com/vigilsec/vigil/cmd/vigil/wire"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/server"
	"github.com/vigilsec/vigil/core/server/servertest"
	"github.com/vigilsec/vigil/core/testsvc"
	"github.com/vigilsec/vigil/reports/query/querysvc"
)

// TestWorkbenchOIDCSignIn signs in to the workbench through OIDC in a
// real headless Chromium against the real OpenID provider
// (.ci/services/oidc.sh): the page asks auth/oidc/oidc/auth_url, the
// browser fills in the provider's login form, the provider sends it back
// to the redirect URI registered for its client, and the page finishes
// with auth/oidc/oidc/callback. The provider only knows the redirect URIs
// of its fixed client, so the browser answers that URI itself with a
// redirect to the workbench's /ui/oidc/callback, as an operator's provider
// configured with the workbench's own callback would send it there.
func TestWorkbenchOIDCSignIn(t *testing.T) {
	chromium := testsvc.Tool(t, "chromium")
	op := oidcProvider(t)
	dir := t.TempDir()
	build := func(cfg *config.Config) (server.Options, error) {
		return wire.OptionsWith(cfg, wire.Tuning{Query: querysvc.Options{Poll: 2 * time.Millisecond}})
	}
	s := servertest.MustStart(t, build, servertest.Options{Dir: dir, Dev: true, Configure: func(cfg *config.Config) {
		cfg.Audit = []config.Block{fileDevice(dir, nil)}
		cfg.UI = true
	}})
	c := s.Client
	if err := c.Sys().PutPolicy("auditor", querysvc.AuditorPolicy); err != nil {
		t.Fatal(err)
	}
	enableAuth(t, c, "oidc", "oidc")
	mustWriteAPI(t, c, "auth/oidc/config", map[string]any{"oidc_discovery_url": op.issuer,
		"oidc_client_id": op.clientID, "oidc_client_secret": op.secret, "default_role": "auditor"})
	mustWriteAPI(t, c, "auth/oidc/role/auditor", map[string]any{"user_claim": "email", "allowed_redirect_uris": opRedirect,
		"oidc_scopes": "email", "token_policies": "auditor"})
	uiURL := s.URL + "/ui/"

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1400, 1000))
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	if err := chromedp.Do(bctx, chromedp.Navigate(uiURL)); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	b := &browser{t: t, ctx: bctx, dir: artifactDir(t, "workbench-oidc")}

	// Answer the client's registered redirect URI with a redirect to the
	// workbench's callback, keeping the provider's query (code, state).
	paused := chromedp.Events(bctx, fetch.RequestPaused)
	if _, err := chromedp.Call(bctx, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{{URLPattern: opRedirect + "*"}}}); err != nil {
		t.Fatal(err)
	}
	redirected := make(chan string, 1)
	go func() {
		for ev, err := range paused {
			if err != nil {
				return
			}
			u, _ := url.Parse(ev.Request.URL)
			to := s.URL + "/ui/oidc/callback?" + u.RawQuery
			_, _ = chromedp.Call(bctx, fetch.FulfillRequest, fetch.FulfillRequestParams{RequestID: ev.RequestID, ResponseCode: 302,
				ResponseHeaders: []*fetch.HeaderEntry{{Name: "Location", Value: to}}})
			select {
			case redirected <- u.RawQuery:
			default:
			}
		}
	}()

	b.do("start the OIDC sign-in",
		chromedp.WaitVisible(chromedp.CSS("#login")),
		chromedp.SetValue(chromedp.CSS("#method"), "oidc"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('#method').dispatchEvent(new Event('change'))`),
		chromedp.SetValue(chromedp.CSS("#oidc-redirect"), opRedirect),
		chromedp.Click(chromedp.CSS("#signin")))
	b.across("the provider's login form", `location.href.startsWith('`+op.issuer+`') && document.querySelector('input[name=username]') !== null`)
	b.shot("1-provider-login")
	b.do("log in at the provider",
		chromedp.SendKeys(chromedp.CSS("input[name=username]"), "carol"),
		chromedp.SendKeys(chromedp.CSS("input[name=password]"), "carol-pw"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('input[name=password]').form.submit()`))
	select {
	case q := <-redirected:
		if !strings.Contains(q, "code=") || !strings.Contains(q, "state=") {
			t.Fatalf("the provider came back without a code and state: %s", q)
		}
	case <-time.After(time.Minute):
		text := jsValue[string](b, `document.body.innerText`)
		t.Fatalf("the provider did not redirect back; page:\n%s", text)
	}
	b.across("signed in", `location.pathname === '/ui/' && document.querySelector('#who').textContent.includes('Signed in as')`)
	b.shot("2-signed-in")
	who := jsValue[string](b, `document.querySelector('#who').textContent`)
	if !strings.Contains(who, "carol@vigil.test") || !strings.Contains(who, "auditor") {
		t.Fatalf("signed in as %q", who)
	}
	// The token works for the auditor's views.
	b.do("evidence", chromedp.Click(chromedp.CSS(`nav button[data-tab=evidence]`)),
		b.until(`document.querySelectorAll('#ev-checkpoints tbody tr').length > 0`))
	b.shot("3-evidence")
}
