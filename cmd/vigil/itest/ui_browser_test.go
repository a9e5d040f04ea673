package itest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vigilsec/vigil/cmd/vigil/wire"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/server"
	"github.com/vigilsec/vigil/core/server/servertest"
	"github.com/vigilsec/vigil/core/testsvc"
	"github.com/vigilsec/vigil/reports/query/querysvc"
	"github.com/vigilsec/vigil/reports/traffic"
)

// artifactDir is where browser tests leave their screenshots:
// $VIGIL_TEST_ARTIFACTS/<name>, default <tmp>/vigil-test-artifacts/<name>.
func artifactDir(t *testing.T, name string) string {
	base, ok := testsvc.Lookup("VIGIL_TEST_ARTIFACTS")
	if !ok {
		base = filepath.Join(os.TempDir(), "vigil-test-artifacts")
	}
	dir := filepath.Join(base, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

// TestWorkbenchInBrowser drives the auditor's workbench (/ui/) in a real
// headless Chromium: sign-in with userpass, a query with a row opened in
// full, the per-day histogram, CSV and JSON export of the query, the
// evidence view, and an evidence bundle generated and downloaded; a
// screenshot of each view goes to the artifact folder.
func TestWorkbenchInBrowser(t *testing.T) {
	chromium := testsvc.Tool(t, "chromium")
	start := time.Date(2025, 3, 3, 0, 0, 0, 0, time.UTC)
	clk := &setClock{t: start.Add(-2 * time.Hour)}
	dir := t.TempDir()
	build := func(cfg *config.Config) (server.Options, error) {
		return wire.OptionsWith(cfg, wire.Tuning{Query: querysvc.Options{Poll: 2 * time.Millisecond}})
	}
	srv := servertest.MustStart(t, build, servertest.Options{Dir: dir, Dev: true, Now: clk.Now, Configure: func(cfg *config.Config) {
		cfg.Audit = []config.Block{fileDevice(dir, nil)}
		cfg.UI = true
	}})
	ts := traffic.Server{Root: srv.Client, NewClient: srv.NewClient, SetClock: clk.Set, AuditDir: filepath.Join(dir, "audit")}
	if err := traffic.Setup(ts, start.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	for d := 0; d < 2; d++ {
		if err := traffic.Day(ts, start.Add(time.Duration(d)*24*time.Hour), d); err != nil {
			t.Fatal(err)
		}
	}
	clk.Set(start.Add(50 * time.Hour))
	if err := srv.Client.Sys().PutPolicy("auditor", querysvc.AuditorPolicy); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Client.Logical().Write("auth/userpass/users/audrey", map[string]any{"password": "audrey-pw-2025", "token_policies": "auditor"}); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Client.Logical().Write("sys/audit/verify", nil); err != nil {
		t.Fatal(err)
	}
	art := artifactDir(t, "workbench")

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1400, 1000))
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	// The first run starts the browser and must not carry a timeout.
	if err := chromedp.Do(bctx, chromedp.Navigate(srv.URL+"/ui/")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	b := &browser{t: t, ctx: bctx, dir: art}

	b.do("sign in",
		chromedp.WaitVisible(chromedp.CSS("#login")),
		chromedp.SendKeys(chromedp.CSS("#user"), "audrey"),
		chromedp.SendKeys(chromedp.CSS("#password"), "audrey-pw-2025"),
		chromedp.Click(chromedp.CSS("#signin")),
		b.until(`document.querySelector('#who').textContent.includes('audrey')`))
	b.shot("1-signed-in")

	b.do("query",
		chromedp.SetValue(chromedp.CSS(`#qform input[name=since]`), "2025-03-01"),
		chromedp.SetValue(chromedp.CSS(`#qform input[name=until]`), "2025-03-06"),
		chromedp.Click(chromedp.CSS("#search")),
		b.until(`document.querySelectorAll('#qtable tbody tr').length > 0 && document.querySelectorAll('#hist-chart rect.bar').length > 0`))
	b.shot("2-query-and-histogram")
	rows := jsValue[int](b, `document.querySelectorAll('#qtable tbody tr').length`)
	if rows < 20 {
		t.Fatalf("the query shows %d rows", rows)
	}
	ticks := jsValue[[]string](b, `[...document.querySelectorAll('#hist-chart text.tick')].map(e => e.textContent)`)
	bars := jsValue[int](b, `document.querySelectorAll('#hist-chart rect.bar').length`)
	// One bar per day with records (set-up day, two days of traffic, the
	// day of the auditor's own sign-in), on integer ticks from 0.
	if bars < 3 || len(ticks) < 2 || ticks[0] != "0" {
		t.Fatalf("histogram: %d bars, ticks %v", bars, ticks)
	}

	b.do("open a record",
		chromedp.Click(chromedp.CSS(`#qtable tbody tr:nth-child(1)`)),
		chromedp.WaitVisible(chromedp.CSS("#record")))
	b.shot("3-record")
	detail := jsValue[string](b, `document.querySelector('#record-table').innerText`)
	for _, want := range []string{"Request id", "Node / seq", "Path", "Decision"} {
		if !strings.Contains(detail, want) {
			t.Errorf("the record view lacks %q: %s", want, detail)
		}
	}
	b.do("close the record", chromedp.Click(chromedp.CSS("#record-close")))

	b.do("export csv", chromedp.Click(chromedp.CSS("#export-csv")), b.until(`document.querySelector('#export-status').textContent.includes('CSV')`))
	csv := jsValue[string](b, `fetch(document.querySelector('#export-link').href).then(r => r.text())`, chromedp.EvalAwaitPromise)
	b.do("export json", chromedp.Click(chromedp.CSS("#export-json")), b.until(`document.querySelector('#export-status').textContent.includes('JSON')`))
	js := jsValue[string](b, `fetch(document.querySelector('#export-link').href).then(r => r.text())`, chromedp.EvalAwaitPromise)
	b.shot("4-export")
	if !strings.HasPrefix(csv, "time,node_id,seq,request_id") || strings.Count(csv, "\r\n") < rows {
		t.Errorf("CSV export: %.200s", csv)
	}
	if !strings.Contains(js, `"checkpoint"`) || !strings.Contains(js, `"records"`) {
		t.Errorf("JSON export: %.200s", js)
	}

	// A filter from the new set: failed logins only.
	b.do("failed logins",
		chromedp.SetValue(chromedp.CSS(`#qform select[name=login]`), "failed"),
		chromedp.Click(chromedp.CSS("#search")),
		b.until(`document.querySelector('#qmeta').textContent.includes('record(s)')`))
	paths := jsValue[[]string](b, `[...document.querySelectorAll('#qtable tbody tr td:nth-child(5)')].map(e => e.textContent)`)
	b.do("reset", chromedp.SetValue(chromedp.CSS(`#qform select[name=login]`), ""))
	if len(paths) == 0 {
		t.Fatal("no failed login found")
	}
	for _, p := range paths {
		if !strings.HasPrefix(p, "auth/userpass/login/") {
			t.Errorf("login=failed shows %s", p)
		}
	}

	b.do("evidence",
		chromedp.Click(chromedp.CSS(`nav button[data-tab=evidence]`)),
		b.until(`document.querySelectorAll('#ev-checkpoints tbody tr').length > 0 && document.querySelectorAll('#ev-verify tbody tr').length > 0`))
	b.shot("5-evidence")
	checkpoints := jsValue[int](b, `document.querySelectorAll('#ev-checkpoints tbody tr').length`)
	verified := jsValue[string](b, `document.querySelector('#ev-summary').textContent`)
	if checkpoints < 1 || !strings.Contains(strings.ToLower(verified), "chain verified") {
		t.Errorf("evidence: %d checkpoints, %q", checkpoints, verified)
	}

	b.do("report bundle",
		chromedp.Click(chromedp.CSS(`nav button[data-tab=reports]`)),
		chromedp.SetValue(chromedp.CSS(`#rform input[name=from]`), "2025-03-03"),
		chromedp.SetValue(chromedp.CSS(`#rform input[name=to]`), "2025-03-05"),
		chromedp.SetValue(chromedp.CSS(`#rform select[name=format]`), "bundle"),
		chromedp.Click(chromedp.CSS("#generate")),
		b.until(`document.querySelector('#report-link') !== null`))
	b.shot("6-report-bundle")
	zipHead := jsValue[string](b, `fetch(document.querySelector('#report-link').href).then(r => r.arrayBuffer()).then(b => String.fromCharCode(...new Uint8Array(b).slice(0, 2)))`, chromedp.EvalAwaitPromise)
	manifest := jsValue[string](b, `document.querySelector('#rstatus').textContent`)
	if zipHead != "PK" || !strings.Contains(manifest, "Manifest SHA-256") {
		t.Errorf("bundle download: %q %q", zipHead, manifest)
	}
	b.do("report preview",
		chromedp.SetValue(chromedp.CSS(`#rform select[name=format]`), "html"),
		chromedp.Click(chromedp.CSS("#generate")),
		b.until(`!document.querySelector('#rframe').classList.contains('hide')`),
		chromedp.Sleep(500*time.Millisecond)) // lets the sandboxed frame paint before the screenshot
	b.shot("7-report-preview")
	b.do("checks",
		chromedp.Click(chromedp.CSS(`nav button[data-tab=checks]`)),
		chromedp.Click(chromedp.CSS("#run-checks")),
		b.until(`document.querySelector('#checks-summary').textContent.includes('passed')`))
	b.shot("8-checks")
}

// browser runs steps in one tab, each bounded in time, and saves
// screenshots.
type browser struct {
	t   *testing.T
	ctx context.Context
	dir string
}

func (b *browser) step() (context.Context, context.CancelFunc) {
	return context.WithTimeout(b.ctx, time.Minute)
}

func (b *browser) do(step string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		text, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.body.innerText`))
		b.t.Fatalf("%s: %v\npage text:\n%s", step, err, text)
	}
}

// until waits for a JavaScript condition to hold.
func (b *browser) until(cond string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingTimeout(30*time.Second))
}

func (b *browser) shot(name string) {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(b.dir, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// jsValue evaluates a JavaScript expression in the page.
func jsValue[T any](b *browser, expr string, opts ...chromedp.EvaluateOption) T {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, opts...))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// across waits for a condition while the page may navigate (a poll stops
// when its page goes away: it is started again on the new one).
func (b *browser) across(what, cond string) {
	b.t.Helper()
	deadline := time.Now().Add(time.Minute)
	var err error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		_, err = chromedp.Run(ctx, chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingTimeout(10*time.Second)))
		cancel()
		if err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond) // the new page is loading
	}
	text, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText`))
	b.t.Fatalf("%s: %v\npage:\n%s", what, err, text)
}
