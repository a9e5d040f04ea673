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
	"strings"
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
// When .ci/services could not start the service it writes why into
// VIGIL_TEST_<SERVICE>_SKIP_REASON (for example VIGIL_TEST_KAFKA_SKIP_REASON
// for VIGIL_TEST_KAFKA_BROKERS); the message then carries that reason.
func Env(tb testing.TB, name string) string {
	tb.Helper()
	v := os.Getenv(name)
	if v == "" {
		why := name + " is not set"
		if r := os.Getenv(reasonVar(name)); r != "" {
			why += ": the service is unavailable: " + r
		}
		Missing(tb, why)
	}
	return v
}

// reasonVar is the variable that explains why the service named by name
// is unavailable: VIGIL_TEST_KAFKA_BROKERS -> VIGIL_TEST_KAFKA_SKIP_REASON.
func reasonVar(name string) string {
	const prefix = "VIGIL_TEST_"
	svc, _, _ := strings.Cut(strings.TrimPrefix(name, prefix), "_")
	return prefix + svc + "_SKIP_REASON"
}

// Lookup returns the variable naming a service and whether it is set,
// without skipping or failing. It is only for optional extras that never
// decide whether a test runs: an additional benchmark arm, or a shared
// data set that also loads a backend when one is configured. A test that
// needs the service calls Env.
func Lookup(name string) (string, bool) {
	v := os.Getenv(name)
	return v, v != ""
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
//
// See also Tmpfs, for tests that need a small real filesystem.
func Root(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		Missing(tb, "the test needs root")
	}
}
