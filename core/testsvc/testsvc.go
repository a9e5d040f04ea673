// Package testsvc is the one place where a test asks for something outside
// the Go toolchain: a service started by .ci/services (Kafka, ClickHouse,
// PostgreSQL, ...), a command-line tool (openssl, pdftotext, ...) or root.
//
// When what the test needs is missing, the test is skipped with a message
// saying how to provide it, except under VIGIL_REQUIRE_SERVICES=1 (set by
// `make test`): there a missing service, tool or privilege is a broken setup
// and the test FAILS. Tests must never call t.Skip for these reasons
// themselves.
package testsvc

import (
	"os"
	"os/exec"
	"testing"
)

// EnvRequire is the variable that turns every missing requirement into a
// failure. `make test` sets it.
const EnvRequire = "VIGIL_REQUIRE_SERVICES"

// Required reports whether missing requirements fail tests.
func Required() bool { return os.Getenv(EnvRequire) == "1" }

// Missing fails (VIGIL_REQUIRE_SERVICES=1) or skips the test with why.
func Missing(tb testing.TB, why string) {
	tb.Helper()
	if Required() {
		tb.Fatalf("%s, but %s=1: the test environment is incomplete (make services-up)", why, EnvRequire)
		return
	}
	tb.Skipf("%s (make services-up, then source $VIGIL_SERVICES_DIR/env.sh)", why)
}

// Env returns the value of the environment variable that names a service
// (for example VIGIL_TEST_CLICKHOUSE_ADDR), or fails/skips when it is unset.
func Env(tb testing.TB, name string) string {
	tb.Helper()
	v := os.Getenv(name)
	if v == "" {
		Missing(tb, name+" is not set")
	}
	return v
}

// Tool returns the path of a command-line tool found in PATH, or
// fails/skips when it is not installed.
func Tool(tb testing.TB, name string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(tb, name+" is not installed")
	}
	return p
}

// Root fails/skips the test unless it runs as root.
func Root(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		Missing(tb, "the test needs root")
	}
}
