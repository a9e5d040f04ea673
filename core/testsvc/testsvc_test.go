package testsvc

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// fakeTB records whether the helper skipped or failed.
type fakeTB struct {
	testing.TB
	skipped, failed bool
}

func (f *fakeTB) Helper()               {}
func (f *fakeTB) Skipf(string, ...any)  { f.skipped = true }
func (f *fakeTB) Fatalf(string, ...any) { f.failed = true }

func TestMissingFailsWhenRequired(t *testing.T) {
	t.Setenv(EnvRequire, "1")
	f := &fakeTB{}
	Env(f, "VIGIL_TEST_SURELY_UNSET_VARIABLE")
	if !f.failed || f.skipped {
		t.Fatalf("required: failed=%v skipped=%v, want a failure", f.failed, f.skipped)
	}
	f = &fakeTB{}
	Tool(f, "vigil-no-such-tool")
	if !f.failed {
		t.Fatal("a missing tool must fail when required")
	}
}

func TestMissingSkipsOtherwise(t *testing.T) {
	t.Setenv(EnvRequire, "")
	f := &fakeTB{}
	Env(f, "VIGIL_TEST_SURELY_UNSET_VARIABLE")
	if f.failed || !f.skipped {
		t.Fatalf("not required: failed=%v skipped=%v, want a skip", f.failed, f.skipped)
	}
}

func TestPresent(t *testing.T) {
	t.Setenv("VIGIL_TEST_PRESENT", "x")
	f := &fakeTB{}
	if v := Env(f, "VIGIL_TEST_PRESENT"); v != "x" || f.failed || f.skipped {
		t.Fatalf("Env = %q failed=%v skipped=%v", v, f.failed, f.skipped)
	}
	if _, err := os.Stat("/bin/sh"); err == nil {
		if p := Tool(f, "sh"); p == "" || f.failed {
			t.Fatal("sh should be found")
		}
	}
}

func TestMissingCarriesTheServiceReason(t *testing.T) {
	t.Setenv(EnvRequire, "1")
	t.Setenv("VIGIL_TEST_KAFKA_BROKERS", "")
	t.Setenv("VIGIL_TEST_KAFKA_SKIP_REASON", "Maven Central unreachable")
	r := &reasonTB{}
	Env(r, "VIGIL_TEST_KAFKA_BROKERS")
	if !strings.Contains(r.msg, "Maven Central unreachable") {
		t.Fatalf("message %q does not carry the reason", r.msg)
	}
	if v, ok := Lookup("VIGIL_TEST_KAFKA_BROKERS"); ok || v != "" {
		t.Fatalf("Lookup of an unset variable = %q, %v", v, ok)
	}
}

// reasonTB records the failure message.
type reasonTB struct {
	testing.TB
	msg string
}

func (r *reasonTB) Helper() {}
func (r *reasonTB) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
}
