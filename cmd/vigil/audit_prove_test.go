package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/audit/chain"
)

// Proofs end to end: from the server and from the files, for a line, for
// a query's records and between checkpoints; each verifies offline, and
// an edited line does not.
func TestAuditProveAndVerifyProof(t *testing.T) {
	dir := t.TempDir()
	s := auditTamperServer(t, dir)
	writeTraffic(t, s, 60)
	pointCLI(t, s)
	auditDir := filepath.Join(dir, "audit")
	key := filepath.Join(dir, "key.pem")
	mustOK(t, "audit", "checkpoint-key", "-output", key)

	proof := filepath.Join(dir, "p.json")
	mustOK(t, "audit", "prove", "-seq", "40", "-o", proof)
	if out := mustOK(t, "audit", "verify-proof", proof); !strings.HasPrefix(out, "OK: the line with seq 40") {
		t.Fatalf("verify-proof: %s", out)
	}
	// An edited line no longer proves anything.
	b, _ := os.ReadFile(proof)
	var bundle chain.InclusionBundle
	if err := json.Unmarshal(b, &bundle); err != nil {
		t.Fatal(err)
	}
	bundle.Line = strings.Replace(bundle.Line, `"operation":"`, `"operation":"x`, 1)
	bad, _ := json.Marshal(bundle)
	os.WriteFile(proof, bad, 0o600)
	if r := runCLI(t, "audit", "verify-proof", "-pubkey", key, proof); r.code != 1 || !strings.Contains(r.out, "FAILED") {
		t.Fatalf("an edited line's proof: exit %d %s %s", r.code, r.out, r.err)
	}

	// Consistency from an early checkpoint to the newest.
	first := firstCheckpointSeq(t, auditDir)
	mustOK(t, "audit", "prove", "-from", strconv.FormatUint(first, 10), "-o", proof)
	if out := mustOK(t, "audit", "verify-proof", "-pubkey", key, proof); !strings.Contains(out, "extends the checkpoint at seq "+strconv.FormatUint(first, 10)) {
		t.Fatalf("consistency: %s", out)
	}

	// A query's records carry their proofs.
	sec, err := s.Client.Logical().ReadWithData("sys/audit/query", map[string][]string{"path": {"secret/"}, "proofs": {"true"}, "limit": {"5"}})
	if err != nil {
		t.Fatal(err)
	}
	recs, _ := sec.Data["records"].([]any)
	if len(recs) == 0 {
		t.Fatal("no records")
	}
	for i, r := range recs {
		p, ok := r.(map[string]any)["proof"]
		if !ok {
			t.Fatalf("record %d has no proof: %v", i, r)
		}
		pb, _ := json.Marshal(p)
		os.WriteFile(proof, pb, 0o600)
		mustOK(t, "audit", "verify-proof", "-pubkey", key, proof)
	}

	// From the files alone.
	s.Stop()
	mustOK(t, "audit", "prove", "-seq", "7", "-o", proof, auditDir)
	mustOK(t, "audit", "verify-proof", "-pubkey", key, proof)
}

func firstCheckpointSeq(t *testing.T, auditDir string) uint64 {
	t.Helper()
	infos, err := chain.ListSegments(filepath.Join(auditDir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(infos[0].Path)
	for _, l := range strings.Split(string(b), "\n") {
		if isCheckpoint(l) {
			cp, err := chain.ParseCheckpointLine([]byte(l))
			if err != nil {
				t.Fatal(err)
			}
			return cp.Seq
		}
	}
	t.Fatal("no checkpoint")
	return 0
}

// The default verify of a live log: folders and other files are skipped
// and named, the key and checkpoints come from the server, and the lines
// written after the last checkpoint fail it unless they are allowed.
func TestAuditVerifyStrictDefaults(t *testing.T) {
	dir := t.TempDir()
	s := auditServerWith(t, dir, false) // one device: every entry is in the file before the answer
	writeTraffic(t, s, 20)
	pointCLI(t, s)
	auditDir := filepath.Join(dir, "audit")
	// The README's example: a glob that also matches the index folder and
	// the Merkle store.
	matches, _ := filepath.Glob(filepath.Join(auditDir, "audit*"))
	r := runCLI(t, append([]string{"audit", "verify", "-allow-uncovered-tail"}, matches...)...)
	if r.code != 0 || !strings.Contains(r.out, "OK: ") || !strings.Contains(r.out, "from the server") ||
		!strings.Contains(r.err, "audit.log.index/: the query index folder") || !strings.Contains(r.err, "audit.log.merkle/: the Merkle tree store") {
		t.Fatalf("verify of the glob: exit %d\n%s\n%s", r.code, r.out, r.err)
	}
	// The verify request itself is written after the checkpoint it made:
	// without -allow-uncovered-tail the uncovered lines fail it.
	r = runCLI(t, "audit", "verify", auditDir)
	if r.code != 1 || !strings.Contains(r.out, "after the last checkpoint") || !strings.Contains(r.out, "not covered") {
		t.Fatalf("uncovered tail: exit %d\n%s\n%s", r.code, r.out, r.err)
	}
	// After a clean stop everything is covered; with the files alone the
	// key comes from the headers, and says so.
	s.Stop()
	out := mustOK(t, "audit", "verify", "-offline", auditDir)
	if !strings.Contains(out, "read from the segment headers") {
		t.Fatalf("offline verify: %s", out)
	}
	r = runCLI(t, "audit", "verify", auditDir)
	if r.code != 2 || !strings.Contains(r.err, "-offline") {
		t.Fatalf("a configured but stopped server: exit %d %s", r.code, r.err)
	}
}

// A refused log is acknowledged with vigil audit relink: the old files are
// set aside, the new chain's first lines link to the old chain's last
// trusted checkpoint, the acknowledgement is its first entry, and the new
// chain verifies.
func TestAuditRelink(t *testing.T) {
	dir := t.TempDir()
	s := auditTamperServer(t, dir)
	writeTraffic(t, s, 20)
	s.Stop()
	auditDir := filepath.Join(dir, "audit")
	l := loadTamperLog(t, auditDir)
	l.segs[l.last()] = l.segs[l.last()][:len(l.segs[l.last()])-5]
	l.save(t)
	s.Restart()
	pointCLI(t, s)
	if got := restartDetection(t, s); !got.detected || got.kind != "truncated" {
		t.Fatalf("not refused: %+v", got)
	}
	runCLI(t, "audit", "relink", "file").wantCode(t, 1, "-reason is required")
	out := mustOK(t, "audit", "relink", "file", "-reason", "INC-42 restored from backup")
	if !strings.Contains(out, "a new chain starts at seq") {
		t.Fatal(out)
	}
	runCLI(t, "audit", "relink", "file", "-reason", "again").wantCode(t, 2, "is not refused")
	writeTraffic(t, s, 3)
	if got := restartDetection(t, s); got.detected {
		t.Fatalf("still refused after the relink: %+v", got)
	}
	r := runCLI(t, "audit", "verify", "-allow-uncovered-tail", auditDir)
	if r.code != 0 || !strings.Contains(r.out, "anchored at relink") || !strings.Contains(r.out, `reason "INC-42 restored from backup"`) ||
		!strings.Contains(r.err, ".broken-") {
		t.Fatalf("verify after relink: exit %d\n%s\n%s", r.code, r.out, r.err)
	}
	// The acknowledgement is the new chain's first entry.
	lines := loadTamperLog(t, auditDir).segs[0]
	for _, line := range lines {
		if isEntry(line) {
			if !strings.Contains(line, `"path":"sys/audit/relink/file"`) || !strings.Contains(line, `"type":"request"`) {
				t.Fatalf("the first entry of the new chain is not the acknowledgement: %s", line)
			}
			break
		}
	}
	fmt.Fprint(os.Stderr, "")
}
