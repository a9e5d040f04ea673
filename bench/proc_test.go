package bench

import (
	"os"
	"testing"
	"time"
)

func TestParseProcStatCPU(t *testing.T) {
	// The command name may contain spaces and parentheses.
	line := "4242 (vigil (srv) x) S 1 4242 4242 0 -1 4194560 1234 0 0 0 150 50 0 0 20 0 12 0 100 0 0"
	got, err := parseProcStatCPU(line)
	if err != nil {
		t.Fatal(err)
	}
	if want := 2 * time.Second; got != want { // (150+50) ticks at 100 Hz
		t.Fatalf("cpu = %v, want %v", got, want)
	}
	if _, err := parseProcStatCPU("4242 (x) S 1 2"); err == nil {
		t.Fatal("short line must fail")
	}
}

func TestProcCPUSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	if _, err := ProcCPU(0); err != nil {
		t.Fatal(err)
	}
	rss, peak, err := ProcRSS(os.Getpid())
	if err != nil || rss <= 0 || peak < rss {
		t.Fatalf("rss %d peak %d err %v", rss, peak, err)
	}
}

func TestPGConnection(t *testing.T) {
	u, user, pass, err := pgConnection("postgres://admin:s3cr%40t@127.0.0.1:15432/db?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	if u != "postgres://{{username}}:{{password}}@127.0.0.1:15432/db?sslmode=disable" || user != "admin" || pass != "s3cr@t" {
		t.Fatalf("got %q %q %q", u, user, pass)
	}
	if _, _, _, err := pgConnection("mysql://a:b@h/db"); err == nil {
		t.Fatal("non-postgres URL must fail")
	}
}

func TestLookupScenarios(t *testing.T) {
	all, err := LookupScenarios([]string{"all"})
	if err != nil || len(all) != len(scenarioOrder) {
		t.Fatalf("all: %d scenarios, err %v", len(all), err)
	}
	for i, s := range all {
		if s.Name != scenarioOrder[i] {
			t.Errorf("scenario %d = %s, want %s", i, s.Name, scenarioOrder[i])
		}
	}
	if _, err := LookupScenarios([]string{"kv-read", "nope"}); err == nil {
		t.Fatal("unknown scenario must fail")
	}
	two, _ := LookupScenarios([]string{"kv-write", " kv-read ", "kv-write"})
	if len(two) != 2 || two[0].Name != "kv-write" {
		t.Fatalf("dedupe/order: %v", two)
	}
}

func TestArmSlug(t *testing.T) {
	if got := armSlug("vigil audit=file+kafka"); got != "vigil-audit-file-kafka" {
		t.Fatal(got)
	}
	if got := armSlug("openbao (peer) audit=file"); got != "openbao-peer-audit-file" {
		t.Fatal(got)
	}
}
