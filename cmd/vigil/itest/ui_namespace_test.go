package itest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	vaultapi "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/cmd/vigil/wire"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/server"
	"github.com/vigilsec/vigil/core/server/servertest"
	"github.com/vigilsec/vigil/core/testsvc"
	"github.com/vigilsec/vigil/reports/query/querysvc"
)

// TestWorkbenchInNamespace: in a real headless Chromium, an auditor of
// hospital-a signs in to the workbench through hospital-a's own userpass
// with the namespace field set, and the records the query shows (read
// back from its JSON export) are hospital-a's alone, though hospital-b and
// the root namespace were busy too.
func TestWorkbenchInNamespace(t *testing.T) {
	chromium := testsvc.Tool(t, "chromium")
	dir := t.TempDir()
	build := func(cfg *config.Config) (server.Options, error) {
		return wire.OptionsWith(cfg, wire.Tuning{Query: querysvc.Options{Poll: 2 * time.Millisecond}})
	}
	s := servertest.MustStart(t, build, servertest.Options{Dir: dir, Dev: true, Configure: func(cfg *config.Config) {
		cfg.Audit = []config.Block{fileDevice(dir, nil)}
		cfg.UI = true
	}})
	tokA := tenant(t, s, "", "hospital-a")
	tokB := tenant(t, s, "", "hospital-b")
	for i := 0; i < 3; i++ {
		for _, c := range [][2]string{{tokA, "hospital-a"}, {tokB, "hospital-b"}, {s.RootToken, ""}} {
			if _, err := in(s, c[0], c[1]).Logical().Read("secret/data/ward"); err != nil && c[1] != "" {
				t.Fatal(err)
			}
		}
	}
	a := in(s, s.RootToken, "hospital-a")
	if err := a.Sys().PutPolicy("auditor", querysvc.AuditorPolicy); err != nil {
		t.Fatal(err)
	}
	if err := a.Sys().EnableAuthWithOptions("userpass", &vaultapi.EnableAuthOptions{Type: "userpass"}); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, a, "auth/userpass/users/audrey", map[string]any{"password": "audrey-pw-2026", "token_policies": "auditor"})

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1400, 1000))
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	if err := chromedp.Do(bctx, chromedp.Navigate(s.URL+"/ui/")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	b := &browser{t: t, ctx: bctx, dir: artifactDir(t, "workbench-namespace")}
	b.do("sign in to hospital-a",
		chromedp.WaitVisible(chromedp.CSS("#login")),
		chromedp.SendKeys(chromedp.CSS("#user"), "audrey"),
		chromedp.SendKeys(chromedp.CSS("#password"), "audrey-pw-2026"),
		chromedp.SendKeys(chromedp.CSS("#namespace"), "hospital-a"),
		chromedp.Click(chromedp.CSS("#signin")),
		b.until(`document.querySelector('#who').textContent.includes('namespace hospital-a')`))
	b.shot("1-signed-in")
	b.do("query",
		chromedp.SetValue(chromedp.CSS(`#qform input[name=since]`), time.Now().UTC().Add(-24*time.Hour).Format("2006-01-02")),
		chromedp.Click(chromedp.CSS("#search")),
		b.until(`document.querySelectorAll('#qtable tbody tr').length > 0`))
	b.do("export json", chromedp.Click(chromedp.CSS("#export-json")), b.until(`document.querySelector('#export-status').textContent.includes('JSON')`))
	b.shot("2-query")
	raw := jsValue[string](b, `fetch(document.querySelector('#export-link').href).then(r => r.text())`, chromedp.EvalAwaitPromise)
	var out struct {
		Records []struct {
			Namespace string `json:"namespace"`
			Path      string `json:"path"`
		} `json:"records"`
	}
	if err := json.Unmarshal([]byte(raw), &out); err != nil {
		t.Fatalf("JSON export: %v: %.300s", err, raw)
	}
	if len(out.Records) < 3 {
		t.Fatalf("hospital-a's auditor sees %d records", len(out.Records))
	}
	for _, r := range out.Records {
		if r.Namespace != "hospital-a/" {
			t.Fatalf("the workbench in hospital-a shows a record of %q (%s)", r.Namespace, r.Path)
		}
	}
}
