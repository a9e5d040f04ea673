package wire_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/cmd/vigil/wire"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/server"
)

// TestStartOrder holds the start order the subsystems depend on (they
// start in list order and stop in reverse): the audit devices open before
// any other subsystem starts and close after every other one stops, so that
// nothing runs unaudited; the streams, the query index and the compliance
// and report endpoints, which read the audit log, start after it.
func TestStartOrder(t *testing.T) {
	plugs, err := wire.Subsystems(&config.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range plugs {
		if p.Provision == nil {
			t.Fatalf("%s has no Provision", p.Name())
		}
		names = append(names, p.Name())
	}
	want := []string{"audit", "authz", "lease", "audit-stream", "audit-query", "compliance", "reports", "snapshot-auto"}
	if !slices.Equal(names, want) {
		t.Fatalf("subsystems %q, want %q", names, want)
	}
	before := func(a, b string) {
		if slices.Index(names, a) > slices.Index(names, b) {
			t.Errorf("%s must start before %s (and stop after it)", a, b)
		}
	}
	for _, n := range names[1:] {
		before("audit", n)
	}
	before("audit-stream", "compliance") // compliance reads stream status
	before("audit-query", "reports")     // reports query the index
	before("compliance", "reports")      // reports gather compliance facts
}

// TestPlugUnknownSubsystem: a subsystem wire does not know fails to
// provision, naming its type, instead of being silently left out.
func TestPlugUnknownSubsystem(t *testing.T) {
	p := wire.Plug(stranger{})
	err := p.Provision(&server.Host{})
	if err == nil || !strings.Contains(err.Error(), "wire_test.stranger") {
		t.Fatalf("got %v", err)
	}
}

type stranger struct{ server.Subsystem }

func (stranger) Name() string { return "stranger" }
