package itest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/cmd/vigil/wire"
	"github.com/vigilsec/vigil/compliance"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/engine/kv"
	"github.com/vigilsec/vigil/core/engine/transit"
	"github.com/vigilsec/vigil/core/server"
	"github.com/vigilsec/vigil/core/server/servertest"
)

// entryFor finds the audit entry of the given type for an internal request
// on path made by actor.
func entryFor(lines []logLine, typ, actor, op, path string) *logLine {
	for i, l := range entries(lines) {
		if l.Type == typ && l.Auth["display_name"] == actor && l.Request["operation"] == op && l.Request["path"] == path {
			return &entries(lines)[i]
		}
	}
	return nil
}

// Scheduled work goes through the Dispatcher as internal requests made by
// a principal that names the job: transit's auto-rotation is recorded as a
// scan of the mount and an update of the key's own path (request and
// response entries), and token tidy as a request to auth/token/tidy.
func TestScheduledJobsAreAuditedRequests(t *testing.T) {
	dir := t.TempDir()
	clk := newFakeClock()
	s := mustAuditServer(t, servertest.Options{Dev: true, Dir: dir, Now: clk.Now, Configure: func(c *config.Config) {
		c.Audit = []config.Block{fileDevice(dir, nil)}
	}}, auditOptions())
	if err := s.Client.Sys().Mount("transit", &vaultapi.MountInput{Type: "transit"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Client.Logical().Write("transit/keys/orders", map[string]any{"auto_rotate_period": "1h"}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour + time.Second)
	if err := s.RunScheduledJobs(context.Background()); err != nil {
		t.Fatal(err)
	}
	key, err := s.Client.Logical().Read("transit/keys/orders")
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := key.Data["latest_version"].(json.Number).Int64(); v != 2 {
		t.Fatalf("latest_version %v after the period, want 2", key.Data["latest_version"])
	}
	s.Stop()
	lines := readLog(t, auditLogPath(dir))
	for _, want := range []struct{ actor, op, path string }{
		{transit.JobAutoRotate, "read", "transit/scheduled/auto-rotate"},
		{transit.JobAutoRotate, "update", "transit/scheduled/auto-rotate/orders"},
		{server.JobTokenTidy, "update", "auth/token/tidy"},
	} {
		for _, typ := range []string{"request", "response"} {
			e := entryFor(lines, typ, want.actor, want.op, want.path)
			if e == nil {
				t.Fatalf("no %s entry for %s %s by %s", typ, want.op, want.path, want.actor)
			}
			if e.Vigil["actor"] != want.actor || e.Request["client_token"] != nil {
				t.Fatalf("%s entry: %s", typ, e.Raw)
			}
		}
	}
}

// Reports find the secrets tagged as regulated through the Dispatcher, as
// audited internal reads of each KV v2 mount: never by reaching into the
// engine.
func TestComplianceScopeReadsAreAudited(t *testing.T) {
	dir := t.TempDir()
	var comp *compliance.Subsystem
	build := func(cfg *config.Config) (server.Options, error) {
		so, err := wire.Options(cfg)
		for _, sub := range so.Subsystems {
			if c, ok := sub.Subsystem.(*compliance.Subsystem); ok {
				comp = c
			}
		}
		return so, err
	}
	s := servertest.MustStart(t, build, servertest.Options{Dev: true, Dir: dir, Configure: func(c *config.Config) {
		c.Audit = []config.Block{fileDevice(dir, nil)}
	}})
	if _, err := s.Client.Logical().Write("secret/data/ward/7", map[string]any{"data": map[string]any{"bed": "7"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Client.Logical().Write("secret/metadata/ward/7", map[string]any{"custom_metadata": map[string]any{"phi": "true"}}); err != nil {
		t.Fatal(err)
	}
	tagged, truncated, err := comp.TaggedSecrets(context.Background())
	if err != nil || truncated || len(tagged) != 1 || tagged[0] != (compliance.TaggedSecret{Mount: "secret/", Key: "ward/7"}) {
		t.Fatalf("tagged %v %v %v", tagged, truncated, err)
	}
	s.Stop()
	lines := readLog(t, auditLogPath(dir))
	for _, typ := range []string{"request", "response"} {
		if entryFor(lines, typ, compliance.ActorScope, "read", "secret/"+kv.TaggedKeysPath) == nil {
			t.Fatalf("no %s entry for the scope read", typ)
		}
	}
}
