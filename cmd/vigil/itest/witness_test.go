package itest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/cmd/vigil/wire"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/server/servertest"
	"github.com/vigilsec/vigil/core/testsvc"
)

// copyDataDir copies a stopped server's data folder (Raft state, audit
// log, everything): an insider's backup, later restored.
func copyDataDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if fi.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o700)
		}
		if !fi.Mode().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, fi.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
}

func restoreDataDir(t *testing.T, backup, dir string) {
	t.Helper()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	copyDataDir(t, backup, dir)
}

func writeKV(t *testing.T, s *servertest.Server, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if _, err := s.Client.Logical().Write(fmt.Sprintf("secret/data/w/%d", i%7), map[string]any{"data": map[string]any{"n": i}}); err != nil {
			t.Fatal(err)
		}
	}
}

// refusedByWitness asserts that the only audit device was refused at
// start, for a log behind what the named witness holds: every request
// fails closed and says why.
func refusedByWitness(t *testing.T, s *servertest.Server, witness string) {
	t.Helper()
	_, err := s.Client.Logical().Read("secret/data/w/1")
	if err == nil {
		t.Fatal("a server whose only audit device should be refused answered a request")
	}
	msg := err.Error()
	for _, want := range []string{"refused to start", "truncated", witness} {
		if !strings.Contains(msg, want) {
			t.Fatalf("the refusal does not say %q:\n%s", want, msg)
		}
	}
	t.Logf("refused: %s", msg)
}

// A node whose files — Raft state and audit log alike — were rolled back
// to an older copy cannot pass its own checks (they agree with each
// other), but the Kafka stream holds newer checkpoints of its chain: the
// file device is refused at start, naming the stream.
func TestWitnessStreamRefusesRolledBackNode(t *testing.T) {
	brokers := testsvc.Env(t, "VIGIL_TEST_KAFKA_BROKERS")
	topic := fmt.Sprintf("vigil-itest-witness-%d", time.Now().UnixNano())
	dir := t.TempDir()
	s := mustStreamServer(t, dir, nil, []config.Block{streamBlock("kafka", "siem", map[string]string{"brokers": brokers, "topic": topic})},
		auditOptions(), shipOptions())
	writeKV(t, s.Server, 20)
	s.waitShipped(t, "siem", s.head(t), time.Minute)
	s.Stop()
	backup := t.TempDir()
	copyDataDir(t, dir, backup)

	s.Restart()
	writeKV(t, s.Server, 40)
	s.waitShipped(t, "siem", s.head(t), time.Minute)
	s.Stop()

	restoreDataDir(t, backup, dir)
	s.Restart()
	refusedByWitness(t, s.Server, "kafka stream siem")
}

// The same with an HTTP witness, which here is a second Vigil
// (sys/audit/witness/{node}/{device}): it keeps the newest checkpoint it
// was sent and refuses to go back, so a rolled-back node is refused at
// start, naming the witness.
func TestWitnessHTTPVigilRefusesRolledBackNode(t *testing.T) {
	witness := servertest.MustStart(t, wire.Options, servertest.Options{Dev: true})
	url := witness.URL + "/v1/sys/audit/witness/{node}/{device}"
	dir := t.TempDir()
	s := mustAuditServer(t, servertest.Options{Dev: true, Dir: dir, Configure: func(c *config.Config) {
		c.Audit = []config.Block{fileDevice(dir, nil)}
		c.AuditWitnesses = []config.Block{{Type: "http", Options: map[string]config.Value{
			"url": {Value: url}, "name": {Value: "vigil-b"}, "token": {Value: witness.RootToken}}, File: "test.hcl", Line: 1}}
	}}, auditOptions())
	held := func() (uint64, map[string]any) {
		sec, err := witness.Client.Logical().Read("sys/audit/witness/test-node/file")
		if err != nil || sec == nil {
			return 0, nil
		}
		cp, _ := sec.Data["checkpoint"].(map[string]any)
		n, _ := cp["seq"].(json.Number)
		v, _ := n.Int64()
		return uint64(v), sec.Data
	}
	writeKV(t, s.Server, 10)
	s.Stop() // the final checkpoint is pushed as the device closes
	first, firstRec := held()
	if first == 0 {
		t.Fatal("the witness holds no checkpoint")
	}
	backup := t.TempDir()
	copyDataDir(t, dir, backup)
	s.Restart()
	writeKV(t, s.Server, 20)
	s.Stop()
	if second, _ := held(); second <= first {
		t.Fatalf("the witness did not move on: seq %d then %d", first, second)
	}
	// The witness refuses to go back, even to a genuine older checkpoint,
	// and refuses a checkpoint whose signature does not verify.
	_, err := witness.Client.Logical().Write("sys/audit/witness/test-node/file", map[string]any{"checkpoint": firstRec["checkpoint"], "public_key": firstRec["public_key"]})
	if err == nil || !strings.Contains(err.Error(), "refusing to go back") {
		t.Fatalf("the witness accepted an older checkpoint: %v", err)
	}
	forged := map[string]any{}
	for k, v := range firstRec["checkpoint"].(map[string]any) {
		forged[k] = v
	}
	forged["seq"] = 1 << 40
	_, err = witness.Client.Logical().Write("sys/audit/witness/test-node/file", map[string]any{"checkpoint": forged, "public_key": firstRec["public_key"]})
	if err == nil || !strings.Contains(err.Error(), "does not verify") {
		t.Fatalf("the witness accepted a forged checkpoint: %v", err)
	}
	restoreDataDir(t, backup, dir)
	s.Restart()
	refusedByWitness(t, s.Server, "witness vigil-b")
}
