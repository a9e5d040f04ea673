package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	kgo "github.com/segmentio/kafka-go"

	"github.com/vigilsec/vigil/audit/auditsvc"
	"github.com/vigilsec/vigil/audit/format/logline"
	"github.com/vigilsec/vigil/audit/ship"
	"github.com/vigilsec/vigil/audit/ship/clickhouse"
	"github.com/vigilsec/vigil/audit/ship/kafka"
	"github.com/vigilsec/vigil/audit/ship/shiptest"
	"github.com/vigilsec/vigil/cmd/vigil/wire"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/server"
	"github.com/vigilsec/vigil/core/server/servertest"
	"github.com/vigilsec/vigil/core/testsvc"
)

// mustStreamCLIServer is a dev server with a file audit device and the
// given audit streams, the CLI pointed at it. It returns the stream
// subsystem.
func mustStreamCLIServer(t *testing.T, dir string, streams ...config.Block) (*servertest.Server, *ship.Subsystem) {
	t.Helper()
	var sub *ship.Subsystem
	build := func(cfg *config.Config) (server.Options, error) {
		o, err := wire.Options(cfg)
		// Use wire's audit subsystem (or add one), and put a stream
		// subsystem with short test delays in wire's place for it.
		as := auditsvc.NewSubsystem(auditsvc.Options{Stdout: io.Discard})
		sub = ship.NewSubsystem(ship.Options{Audit: as, Sinks: map[string]ship.Factory{"kafka": kafka.New, "clickhouse": clickhouse.New},
			Poll: 2 * time.Millisecond, MinBackoff: 50 * time.Millisecond})
		var subs []server.Plug
		haveAudit, haveShip := false, false
		for _, x := range o.Subsystems {
			switch x.Subsystem.(type) {
			case *auditsvc.Subsystem:
				x, haveAudit = wire.Plug(as), true
			case *ship.Subsystem:
				x, haveShip = wire.Plug(sub), true
			}
			subs = append(subs, x)
		}
		if !haveAudit {
			subs = append(subs, wire.Plug(as))
		}
		if !haveShip {
			subs = append(subs, wire.Plug(sub))
		}
		o.Subsystems = subs
		return o, err
	}
	s := servertest.MustStart(t, build, servertest.Options{Dev: true, Dir: dir, Configure: func(c *config.Config) {
		c.Audit = []config.Block{{Type: "file", Name: "file", Options: map[string]config.Value{
			"path": {Value: filepath.Join(dir, "audit", "audit.log")}}}}
		c.AuditStreams = streams
	}})
	pointCLI(t, s)
	return s, sub
}

func stream(typ, name string, kv ...string) config.Block {
	o := map[string]config.Value{}
	for i := 0; i+1 < len(kv); i += 2 {
		o[kv[i]] = config.Value{Value: kv[i+1], List: []string{kv[i+1]}, Line: 2 + i, File: "test.hcl"}
	}
	return config.Block{Type: typ, Name: name, Options: o, Line: 1, File: "test.hcl"}
}

// waitCaughtUp waits until every stream shipped the device's whole log as
// it stands now.
func waitCaughtUp(t *testing.T, sub *ship.Subsystem) {
	t.Helper()
	for _, sh := range sub.Shippers() {
		shiptest.WaitFor(t, time.Minute, "stream "+sh.Name()+" to catch up", func() bool {
			st := sh.Status()
			return st.HeadSeq > 0 && st.LagEntries == 0
		})
	}
}

func TestAuditStreamStatusAndVerifyKafka(t *testing.T) {
	fk := shiptest.StartKafka(t)
	dir := t.TempDir()
	s, sub := mustStreamCLIServer(t, dir, stream("kafka", "siem", "brokers", fk.Addr(), "topic", "audit-cli"),
		stream("kafka", "siem-cef", "brokers", fk.Addr(), "topic", "audit-cli-cef", "format", "cef"))
	mustOK(t, "kv", "put", "secret/app", "password=s3cr3t")
	key := filepath.Join(dir, "key.pem")
	mustOK(t, "audit", "checkpoint-key", "-output", key)
	waitCaughtUp(t, sub)

	out := mustOK(t, "audit", "stream", "status")
	for _, want := range []string{"Name", "siem", "siem-cef", "kafka", "shipping", "kafka:audit-cli"} {
		if !strings.Contains(out, want) {
			t.Fatalf("status table lacks %q:\n%s", want, out)
		}
	}
	var all map[string]map[string]any
	if err := json.Unmarshal([]byte(mustOK(t, "audit", "stream", "status", "-format=json")), &all); err != nil || all["siem"]["type"] != "kafka" {
		t.Fatalf("json status: %v %v", all, err)
	}
	if got := strings.TrimSpace(mustOK(t, "audit", "stream", "status", "-field=state", "siem-cef")); got != "shipping" {
		t.Fatalf("-field=state: %q", got)
	}
	runCLI(t, "audit", "stream", "status", "nope").wantCode(t, 2, "no audit stream")

	s.Stop() // nothing more is written while the topic is verified
	for _, topic := range []string{"audit-cli", "audit-cli-cef"} {
		r := runCLI(t, "audit", "verify", "--kafka", fk.Addr(), "--topic", topic, "-pubkey", key)
		if r.code != 0 || !strings.Contains(r.out, "node test-node:") || !strings.Contains(r.out, "OK:") || strings.Contains(r.out, "NOT checked") {
			t.Fatalf("verify %s: exit %d\n%s\n%s", topic, r.code, r.out, r.err)
		}
	}
	// The same command under its own name.
	mustOK(t, "audit", "verify-stream", "-kafka="+fk.Addr(), "-topic=audit-cli")
	// The local form still works.
	mustOK(t, "audit", "verify", "-offline", "-pubkey", key, filepath.Join(dir, "audit", "audit.log"))

	// A forged line appended to the topic: the chain breaks there.
	var last []byte
	err := kafka.ReadTopic(context.Background(), kafka.ReadOptions{Brokers: []string{fk.Addr()}, Topic: "audit-cli"}, func(m kafka.Message) error {
		last = m.Value
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := logline.ScanMembers(last)
	forged := fmt.Sprintf(`{"time":"2026-01-01T00:00:00Z","type":"request","request":{"path":"secret/data/forged"},"seq":%d,"node_id":"%s","prev_hash":"%s","hash":"%s"}`,
		m.Seq+1, m.NodeID, m.Hash, strings.Repeat("ab", 32))
	w := &kgo.Writer{Addr: kgo.TCP(fk.Addr()), Topic: "audit-cli", RequiredAcks: kgo.RequireAll}
	if err := w.WriteMessages(context.Background(), kgo.Message{Key: []byte(m.NodeID), Value: []byte(forged)}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	r := runCLI(t, "audit", "verify", "--kafka", fk.Addr(), "--topic", "audit-cli", "-pubkey", key)
	if r.code != 1 || !strings.Contains(r.out, "FAILED: node test-node: edited") {
		t.Fatalf("forged line: exit %d\n%s\n%s", r.code, r.out, r.err)
	}
	runCLI(t, "audit", "verify", "--kafka", fk.Addr()).wantCode(t, 1, "-kafka needs -topic")
	runCLI(t, "audit", "verify", "--kafka", fk.Addr(), "--topic", "x", "--clickhouse", "y").wantCode(t, 1, "exactly one of")
}

func TestAuditVerifyClickHouse(t *testing.T) {
	addr := testsvc.Env(t, "VIGIL_TEST_CLICKHOUSE_ADDR")
	shiptest.Use(t, "clickhouse")
	table := fmt.Sprintf("vigil_cli_%d", time.Now().UnixNano()%1e12)
	dir := t.TempDir()
	s, sub := mustStreamCLIServer(t, dir, stream("clickhouse", "wh", "addr", addr, "database", "vigil_cli", "table", table))
	mustOK(t, "kv", "put", "secret/app", "password=s3cr3t")
	key := filepath.Join(dir, "key.pem")
	mustOK(t, "audit", "checkpoint-key", "-output", key)
	waitCaughtUp(t, sub)
	s.Stop()

	args := []string{"audit", "verify", "--clickhouse", addr, "--database", "vigil_cli", "--table", table, "-pubkey", key}
	if r := runCLI(t, args...); r.code != 0 || !strings.Contains(r.out, "OK:") {
		t.Fatalf("verify: exit %d\n%s\n%s", r.code, r.out, r.err)
	}
	// Tamper with a row: insert another version of seq 5 (FINAL keeps the
	// last one inserted).
	conn, err := clickhouse.Open(clickhouse.Config{Addr: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := context.Background()
	q := fmt.Sprintf("INSERT INTO vigil_cli.%s (node_id, seq, time, time_ns, type, raw, prev_hash, hash)", table)
	var raw, prev, hash string
	row := conn.QueryRow(ctx, fmt.Sprintf("SELECT raw, prev_hash, hash FROM vigil_cli.%s FINAL WHERE seq = 5", table))
	if err := row.Scan(&raw, &prev, &hash); err != nil {
		t.Fatal(err)
	}
	b, err := conn.PrepareBatch(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	tampered := strings.Replace(raw, `"type":"`, `"tampered":true,"type":"`, 1)
	if err := b.Append("test-node", uint64(5), time.Now().UTC().Truncate(time.Second), uint32(0), "request", tampered, prev, hash); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, args...)
	if r.code != 1 || !strings.Contains(r.out, "FAILED: node test-node: edited at seq 5") {
		t.Fatalf("tampered row: exit %d\n%s\n%s", r.code, r.out, r.err)
	}
}
