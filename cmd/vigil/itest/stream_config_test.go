package itest

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/audit/auditsvc"
	"github.com/vigilsec/vigil/audit/ship"
	"github.com/vigilsec/vigil/audit/ship/shiptest"
	"github.com/vigilsec/vigil/cmd/vigil/wire"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/server"
)

// Bad audit_stream blocks stop the server at start with an error naming
// the file and line.
func TestStreamConfigErrors(t *testing.T) {
	src := func(streams string) string {
		return `storage "raft" {
  path    = "` + filepath.Join(t.TempDir(), "data") + `"
  node_id = "n1"
}
listener "tcp" {
  address     = "127.0.0.1:0"
  tls_disable = true
}
audit "file" "file" {
  path = "` + filepath.Join(t.TempDir(), "audit.log") + `"
}
` + streams
	}
	for name, tc := range map[string]struct{ hcl, want string }{
		"unknown type": {`audit_stream "splunk" "s" { url = "x" }`, `vigil.hcl:12: unknown audit_stream type "splunk" (known: clickhouse, kafka, syslog)`},
		"unknown key": {`audit_stream "kafka" "s" {
  brokers = ["k:9092"]
  topic   = "t"
  partiton = 3
}`, `vigil.hcl:15: unknown key "partiton" in kafka "s" block`},
		"bad value": {`audit_stream "kafka" "s" {
  brokers = ["k:9092"]
  topic   = "t"
  format  = "leef"
}`, `vigil.hcl:15: audit_stream "kafka" "s": format: unknown format "leef"`},
		"bad linger": {`audit_stream "clickhouse" "c" {
  addr   = ["c:9000"]
  linger = "soon"
}`, `vigil.hcl:14: audit_stream "clickhouse" "c": linger`},
		"twice": {`audit_stream "kafka" "s" {
  brokers = ["k:9092"]
  topic   = "t"
}
audit_stream "clickhouse" "s" { addr = ["c:9000"] }`, `audit_stream "s" declared twice`},
	} {
		t.Run(name, func(t *testing.T) {
			cfg, err := config.Parse("vigil.hcl", []byte(src(tc.hcl)))
			if err != nil {
				t.Fatal(err)
			}
			o, err := wire.Options(cfg)
			if err != nil {
				t.Fatal(err)
			}
			var as *auditsvc.Subsystem
			hasShip := false
			for _, sub := range o.Subsystems {
				switch x := sub.Subsystem.(type) {
				case *auditsvc.Subsystem:
					as = x
				case *ship.Subsystem:
					hasShip = true
				}
			}
			if as == nil {
				as = auditsvc.NewSubsystem(auditsvc.Options{Stdout: io.Discard})
				o.Subsystems = append(o.Subsystems, wire.Plug(as))
			}
			if !hasShip {
				o.Subsystems = append(o.Subsystems, wire.Plug(ship.NewSubsystem(ship.Options{Audit: as, Sinks: streamSinks()})))
			}
			o.Logger = slog.New(slog.DiscardHandler)
			srv, err := server.New(o)
			if err == nil {
				_ = srv.Close(context.Background())
				t.Fatalf("server started; want error %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

// A restart (seal at shutdown, unseal at start) saves and reloads the
// cursor: nothing already shipped is sent again, and the lines written at
// shutdown (the "closed" event, the final checkpoint) and start are
// shipped after it.
func TestStreamResumesAfterRestart(t *testing.T) {
	fk := shiptest.StartKafka(t)
	dir := t.TempDir()
	s := mustStreamServer(t, dir, nil, []config.Block{
		streamBlock("kafka", "siem", map[string]string{"brokers": fk.Addr(), "topic": "restart"}),
	}, auditOptions(), shipOptions())
	for i := 0; i < 20; i++ {
		if _, err := s.Client.Logical().Write("secret/data/r", map[string]any{"data": map[string]any{"i": i}}); err != nil {
			t.Fatal(err)
		}
	}
	s.waitShipped(t, "siem", s.head(t), time.Minute)
	s.Restart()
	if _, err := s.Client.Logical().Read("secret/data/r"); err != nil {
		t.Fatal(err)
	}
	head := s.head(t)
	st := s.waitShipped(t, "siem", head, time.Minute)
	if st.SavedSeq == 0 {
		t.Fatalf("no cursor saved: %+v", st)
	}
	r := verifyLines(t, readTopic(t, fk.Addr(), "restart"), s.publicKey(t), head)
	if r.Duplicates != 0 {
		t.Fatalf("%d lines shipped twice across a clean restart", r.Duplicates)
	}
	var closed bool
	for _, l := range readLog(t, auditLogPath(dir)) {
		if strings.Contains(l.Raw, `"kind":"closed"`) && l.Seq <= head {
			closed = true
		}
	}
	if !closed {
		t.Fatal("the shutdown's closed event is not in the shipped range")
	}
	t.Logf("%s", r)
}
