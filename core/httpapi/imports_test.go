package httpapi_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestHTTPAPIDoesNotReachEngines enforces the one-way-in rule: the HTTP layer
// may only reach engines through core.Dispatcher, so it must not import the
// router, the server wiring or any engine.
func TestHTTPAPIDoesNotReachEngines(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/vigilsec/vigil/core/httpapi").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	forbidden := []string{
		"github.com/vigilsec/vigil/core/router",
		"github.com/vigilsec/vigil/core/engine/",
		"github.com/vigilsec/vigil/core/server",
		"github.com/vigilsec/vigil/core/system",
		"github.com/vigilsec/vigil/core/token",
		"github.com/vigilsec/vigil/core/auth/",
	}
	deps := strings.Fields(string(out))
	if len(deps) < 5 {
		t.Fatalf("go list returned too little: %q", out)
	}
	found := false
	for _, d := range deps {
		if d == "github.com/vigilsec/vigil/core" {
			found = true
		}
		for _, f := range forbidden {
			if d == f || strings.HasPrefix(d, f) {
				t.Errorf("core/httpapi depends on %s", d)
			}
		}
	}
	if !found {
		t.Fatal("core/httpapi does not depend on core: the check is not seeing the real graph")
	}
}
