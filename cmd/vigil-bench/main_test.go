package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/bench"
)

type cliResult struct {
	code     int
	out, err string
}

// runCLI runs the command with captured output.
func runCLI(t *testing.T, args ...string) cliResult {
	t.Helper()
	var o, e bytes.Buffer
	stdout, stderr = &o, &e
	t.Cleanup(func() { stdout, stderr = os.Stdout, os.Stderr })
	code := runBench(args)
	return cliResult{code: code, out: o.String(), err: e.String()}
}

// fakeVigil points $VIGIL_BENCH_VIGIL_BIN at an (unused) file.
func fakeVigil(t *testing.T) string {
	t.Helper()
	b := filepath.Join(t.TempDir(), "vigil")
	if err := os.WriteFile(b, []byte("#!/bin/sh\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv(vigilBinEnv, b)
	return b
}

func TestBenchFlagsStandard(t *testing.T) {
	vb := fakeVigil(t)
	o, err := parseBenchFlags([]string{"--standard", "--quiet"})
	if err != nil {
		t.Fatal(err)
	}
	s := o.settings
	if !slices.Equal(s.Scenarios, []string{"kv-read", "kv-write", "transit-encrypt"}) {
		t.Errorf("scenarios = %v", s.Scenarios)
	}
	if !slices.Equal(s.Audit, []string{"off", "file", "file+kafka", "file+clickhouse"}) {
		t.Errorf("audit = %v", s.Audit)
	}
	if s.Target != "vigil" || s.VigilBin != vb || s.Connections != 32 || s.Rounds != 2 || s.Duration != 8*time.Second {
		t.Errorf("settings = %+v", s)
	}
	if o.out != "bench/results/latest.json" || o.md != "bench/results/latest.md" {
		t.Errorf("out = %q md = %q", o.out, o.md)
	}
	if s.Progress != nil {
		t.Error("--quiet must disable the progress line")
	}
}

func TestBenchFlagsOverrideStandard(t *testing.T) {
	fakeVigil(t)
	o, err := parseBenchFlags([]string{"--standard", "--duration", "3s", "--audit", "off,file", "--out", "x/r.json"})
	if err != nil {
		t.Fatal(err)
	}
	if o.settings.Duration != 3*time.Second || !slices.Equal(o.settings.Audit, []string{"off", "file"}) {
		t.Errorf("settings = %+v", o.settings)
	}
	if o.out != "x/r.json" || o.md != "x/r.md" {
		t.Errorf("out = %q md = %q", o.out, o.md)
	}
	if len(o.settings.Scenarios) != 3 {
		t.Errorf("scenarios = %v", o.settings.Scenarios)
	}
}

func TestBenchFlagsExternalAndOpenLoop(t *testing.T) {
	t.Setenv("VAULT_TOKEN", "t0k")
	t.Setenv("VIGIL_TOKEN", "")
	o, err := parseBenchFlags([]string{"--addr", "http://127.0.0.1:8200", "--scenario", "kv-read,transit-encrypt",
		"--rate", "250", "--requests", "1000", "--connections", "8"})
	if err != nil {
		t.Fatal(err)
	}
	s := o.settings
	if s.Addr != "http://127.0.0.1:8200" || s.Token != "t0k" || s.Target != "" || s.Audit != nil || s.VigilBin != "" {
		t.Errorf("external settings = %+v", s)
	}
	if s.Rate != 250 || s.Requests != 1000 || s.Duration != 0 || s.Connections != 8 {
		t.Errorf("load settings = %+v", s)
	}
	if o.out != "" || o.md != "" {
		t.Errorf("no report files unless asked: %q %q", o.out, o.md)
	}
}

func TestBenchList(t *testing.T) {
	t.Setenv(vigilBinEnv, "")
	r := runCLI(t, "--list")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.err)
	}
	for _, s := range bench.ScenarioOrder() {
		if !strings.Contains(r.out, s) {
			t.Errorf("--list misses %s:\n%s", s, r.out)
		}
	}
}

// Bad settings fail before any server is started.
func TestBenchRejectsBadSettings(t *testing.T) {
	t.Setenv("VAULT_TOKEN", "")
	t.Setenv("VIGIL_TOKEN", "")
	fakeVigil(t)
	r := runCLI(t, "--scenario", "nope", "--quiet")
	if r.code == 0 || !strings.Contains(r.err, `unknown scenario "nope"`) {
		t.Fatalf("unknown scenario: exit %d, stderr %s", r.code, r.err)
	}
	r = runCLI(t, "--audit", "file+nfs", "--quiet")
	if r.code == 0 || !strings.Contains(r.err, "unknown --audit") {
		t.Fatalf("bad audit mode: exit %d, stderr %s", r.code, r.err)
	}
	r = runCLI(t, "--addr", "http://127.0.0.1:1", "--quiet")
	if r.code == 0 || !strings.Contains(r.err, "--addr needs --token") {
		t.Fatalf("--addr without token: exit %d, stderr %s", r.code, r.err)
	}
}

// Without --vigil-bin or $VIGIL_BENCH_VIGIL_BIN, the vigil binary next to
// this one is required (the test binary has none beside it).
func TestBenchNeedsVigilBinary(t *testing.T) {
	t.Setenv(vigilBinEnv, "")
	if _, err := parseBenchFlags([]string{"--quiet"}); err == nil || !strings.Contains(err.Error(), "--vigil-bin") {
		t.Fatalf("err = %v", err)
	}
	o, err := parseBenchFlags([]string{"--quiet", "--vigil-bin", "/x/vigil"})
	if err != nil || o.settings.VigilBin != "/x/vigil" {
		t.Fatalf("--vigil-bin: %v %+v", err, o)
	}
}
