package main

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/audit/auditsvc"
	"github.com/vigilsec/vigil/audit/chain"
	"github.com/vigilsec/vigil/cmd/vigil/wire"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/server"
	"github.com/vigilsec/vigil/core/server/servertest"
)

// The tamper suite attacks a real server's audit log the way an insider
// with shell access and no keys would, following docs/audit-format.md to
// re-hash what they change. Every attack must be detected three ways, each
// naming the kind of tampering:
//
//   - offline: `vigil audit verify <folder>` with no options (the key and
//     the trusted checkpoints come from the server);
//   - server:  POST sys/audit/verify;
//   - restart: the server, started on the tampered files, refuses the
//     device (and names the kind in sys/audit/witnesses).
//
// TestAuditTamperSuite prints the table of detections.

// tamperLog is an audit log as segment files of lines (with newlines),
// in chain order.
type tamperLog struct {
	dir   string
	files []string   // paths, chain order
	segs  [][]string // lines of each file
}

func loadTamperLog(t *testing.T, dir string) *tamperLog {
	t.Helper()
	infos, err := chain.ListSegments(filepath.Join(dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	l := &tamperLog{dir: dir}
	for _, si := range infos {
		b, err := os.ReadFile(si.Path)
		if err != nil {
			t.Fatal(err)
		}
		l.files = append(l.files, si.Path)
		l.segs = append(l.segs, strings.SplitAfter(strings.TrimSuffix(string(b), "\n")+"\n", "\n")[:strings.Count(string(b), "\n")])
	}
	return l
}

// save writes every file back (files removed from the list are deleted).
func (l *tamperLog) save(t *testing.T) {
	t.Helper()
	keep := map[string]bool{}
	for i, p := range l.files {
		keep[p] = true
		if err := os.WriteFile(p, []byte(strings.Join(l.segs[i], "")), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ents, _ := os.ReadDir(l.dir)
	for _, e := range ents {
		p := filepath.Join(l.dir, e.Name())
		if !e.IsDir() && strings.HasPrefix(e.Name(), "audit") && strings.HasSuffix(e.Name(), ".log") && !keep[p] {
			os.Remove(p)
		}
	}
}

func (l *tamperLog) last() int { return len(l.segs) - 1 }

// members parses the chain members of a line the way docs/audit-format.md
// section 1 says: from the end.
func members(line string) (body string, seq uint64, node, prev, hash string) {
	line = strings.TrimSuffix(line, "\n")
	i := strings.LastIndex(line, `,"hash":"`)
	hash = line[i+9 : len(line)-2]
	j := strings.LastIndex(line[:i], `"seq":`)
	body = line[:j]
	rest := line[j+len(`"seq":`) : i]
	n := strings.Index(rest, `,"node_id":"`)
	seq, _ = strconv.ParseUint(rest[:n], 10, 64)
	rest = rest[n+len(`,"node_id":"`):]
	p := strings.Index(rest, `","prev_hash":"`)
	node, prev = rest[:p], rest[p+len(`","prev_hash":"`):len(rest)-1]
	return
}

// chainLine builds a line per docs/audit-format.md sections 3 and 4.
func chainLine(body string, seq uint64, node, prev string) (string, string) {
	canon := body + `"seq":` + strconv.FormatUint(seq, 10) + `,"node_id":"` + node + `","prev_hash":"` + prev + `"}`
	sum := sha256.Sum256([]byte(prev + canon))
	h := hex.EncodeToString(sum[:])
	return canon[:len(canon)-1] + `,"hash":"` + h + `"}` + "\n", h
}

var prevSegRE = regexp.MustCompile(`"prev_segment_last_seq":\d+,"prev_segment_last_hash":"[0-9a-f]{64}"`)

// rehash renumbers and re-hashes every line from (seg, i) to the end of the
// log so that it chains to the line before, fixing segment headers' prev
// members on the way: what the format document lets anyone do.
func (l *tamperLog) rehash(seg, i int) {
	var seq uint64
	prev := strings.Repeat("0", 64)
	if i > 0 {
		_, seq, _, _, prev = members(l.segs[seg][i-1])
	} else if seg > 0 {
		pl := l.segs[seg-1][len(l.segs[seg-1])-1]
		_, seq, _, _, prev = members(pl)
	}
	for s := seg; s < len(l.segs); s++ {
		start := 0
		if s == seg {
			start = i
		}
		for k := start; k < len(l.segs[s]); k++ {
			body, _, node, _, _ := members(l.segs[s][k])
			if strings.HasPrefix(body, `{"type":"vigil.segment"`) {
				body = prevSegRE.ReplaceAllString(body, fmt.Sprintf(`"prev_segment_last_seq":%d,"prev_segment_last_hash":"%s"`, seq, prev))
			}
			seq++
			l.segs[s][k], prev = chainLine(body, seq, node, prev)
		}
	}
}

func isCheckpoint(line string) bool { return strings.HasPrefix(line, `{"type":"vigil.checkpoint"`) }
func isEntry(line string) bool      { return strings.HasPrefix(line, `{"time":"`) }

// entryIndex returns the index of the n-th entry line of segment s.
func (l *tamperLog) entryIndex(t *testing.T, s, n int) int {
	for i, line := range l.segs[s] {
		if isEntry(line) {
			if n == 0 {
				return i
			}
			n--
		}
	}
	t.Fatalf("segment %d has too few entries", s)
	return -1
}

// tamperFixture is the pristine server data folder every attack starts
// from, and the artefacts some attacks use.
type tamperFixture struct {
	work    string   // where every attack runs: the server's data folder (paths are stored in Raft)
	base    string   // a pristine copy of it, restored before each attack
	older   string   // the audit folder as it was halfway
	other   []string // another node's segments
	foreign string   // a whole log of the same node under another key
}

func auditTamperServer(t *testing.T, dir string) *servertest.Server {
	t.Helper()
	return auditServerWith(t, dir, true)
}

// auditServerWith starts a dev server with a file device at
// <dir>/audit/audit.log and, with stdout, a second device that keeps the
// server answering while the file device is refused.
func auditServerWith(t *testing.T, dir string, stdout bool) *servertest.Server {
	t.Helper()
	build := func(cfg *config.Config) (server.Options, error) {
		o, err := wire.OptionsWith(cfg, wire.Tuning{Audit: auditsvc.Options{Stdout: io.Discard}})
		return o, err
	}
	return servertest.MustStart(t, build, servertest.Options{Dev: true, Dir: dir, Configure: func(c *config.Config) {
		c.Audit = []config.Block{
			{Type: "file", Name: "file", Options: map[string]config.Value{
				"path": {Value: filepath.Join(dir, "audit", "audit.log")}, "max_size_mb": {Value: "1"},
				"checkpoint_every": {Value: "25"}, "fsync": {Value: "interval"}}},
		}
		if stdout {
			c.Audit = append(c.Audit, config.Block{Type: "stdout", Name: "stdout", Options: map[string]config.Value{}})
		}
	}})
}

func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if fi.IsDir() {
			return os.MkdirAll(target, 0o700)
		}
		if !fi.Mode().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, fi.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
}

func writeTraffic(t *testing.T, s *servertest.Server, n int) {
	t.Helper()
	pad := strings.Repeat("x", 400)
	for i := 0; i < n; i++ {
		if _, err := s.Client.Logical().Write(fmt.Sprintf("secret/data/app/%d", i%50), map[string]any{"data": map[string]any{"v": pad, "n": i}}); err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			if _, err := s.Client.Logical().Read(fmt.Sprintf("secret/data/app/%d", i%50)); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// buildTamperFixture runs a server with enough traffic for several
// segments and a restart in the middle, and keeps a copy of the audit
// folder from halfway.
func buildTamperFixture(t *testing.T) *tamperFixture {
	t.Helper()
	fx := &tamperFixture{work: t.TempDir(), base: t.TempDir(), older: t.TempDir()}
	s := auditTamperServer(t, fx.work)
	writeTraffic(t, s, 450)
	s.Stop()
	copyTree(t, filepath.Join(fx.work, "audit"), fx.older)
	s.Restart()
	writeTraffic(t, s, 450)
	s.Stop()
	copyTree(t, fx.work, fx.base)
	infos, err := chain.ListSegments(filepath.Join(fx.base, "audit", "audit.log"))
	if err != nil || len(infos) < 4 {
		t.Fatalf("want at least 4 segments, got %d (%v)", len(infos), err)
	}
	// Another node's log, and the same node's log under another key.
	for _, c := range []struct {
		node string
		dst  *string
	}{{"other-node", nil}, {"test-node", &fx.foreign}} {
		dir := t.TempDir()
		_, key, _ := ed25519.GenerateKey(nil)
		w, err := chain.Open(chain.Config{Path: filepath.Join(dir, "audit.log"), NodeID: c.node, Signer: key, MaxSizeMB: 1,
			CheckpointEvery: 25, WatchInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		body := `{"time":"2026-01-01T00:00:00Z","type":"request","auth":{},"request":{"path":"secret/data/app/1","pad":"` + strings.Repeat("y", 700) + `"}}`
		for i := 0; i < 3000; i++ {
			if _, err := w.Append(t.Context(), []byte(body)); err != nil {
				t.Fatal(err)
			}
		}
		w.Close()
		if c.dst != nil {
			*c.dst = dir
			continue
		}
		infos, _ := chain.ListSegments(filepath.Join(dir, "audit.log"))
		for _, si := range infos {
			fx.other = append(fx.other, si.Path)
		}
	}
	return fx
}

// attack is one way of tampering; kinds are the failure kinds that name it
// correctly (a check may meet the damage from a different side).
type attack struct {
	name  string
	kinds []chain.FailureKind
	// live attacks tamper while the server runs (after more traffic);
	// the others while it is stopped.
	live   bool
	tamper func(t *testing.T, l *tamperLog, fx *tamperFixture)
}

func kinds(k ...chain.FailureKind) []chain.FailureKind { return k }

var tamperAttacks = []attack{
	{"edit an entry", kinds(chain.KindEdited), false, func(t *testing.T, l *tamperLog, _ *tamperFixture) {
		i := l.entryIndex(t, 1, 3)
		l.segs[1][i] = strings.Replace(l.segs[1][i], `"operation":"update"`, `"operation":"delete"`, 1)
		l.segs[1][i] = strings.Replace(l.segs[1][i], `"operation":"read"`, `"operation":"list"`, 1)
	}},
	{"edit an entry and re-hash the rest of its segment", kinds(chain.KindForgedCheckpoint, chain.KindSplice), false, func(t *testing.T, l *tamperLog, _ *tamperFixture) {
		i := l.entryIndex(t, 1, 3)
		l.segs[1][i] = strings.Replace(l.segs[1][i], `"path":"secret/data/app/`, `"path":"secret/data/ppa/`, 1)
		saved := l.segs[2:]
		l.segs = l.segs[:2]
		l.rehash(1, i)
		l.segs = append(l.segs, saved...)
	}},
	{"edit an entry and re-hash the whole log", kinds(chain.KindForgedCheckpoint), false, func(t *testing.T, l *tamperLog, _ *tamperFixture) {
		i := l.entryIndex(t, 1, 3)
		l.segs[1][i] = strings.Replace(l.segs[1][i], `"path":"secret/data/app/`, `"path":"secret/data/ppa/`, 1)
		l.rehash(1, i)
	}},
	{"edit, drop the later checkpoints, re-hash", kinds(chain.KindCheckpointMissing, chain.KindTruncated), false, func(t *testing.T, l *tamperLog, _ *tamperFixture) {
		s := l.last()
		i := l.entryIndex(t, s, 5)
		l.segs[s][i] = strings.Replace(l.segs[s][i], `"path":"secret/data/app/`, `"path":"secret/data/ppa/`, 1)
		var kept []string
		for k, line := range l.segs[s] {
			if k > i && isCheckpoint(line) {
				continue
			}
			kept = append(kept, line)
		}
		l.segs[s] = kept
		l.rehash(s, i)
	}},
	{"re-hash with padding: edit, drop later checkpoints, pad past the trusted seq", kinds(chain.KindCheckpointMissing, chain.KindCheckpointMismatch), false, func(t *testing.T, l *tamperLog, _ *tamperFixture) {
		s := l.last()
		i := l.entryIndex(t, s, 5)
		old := append([]string(nil), l.segs[s][i:i+30]...)
		l.segs[s][i] = strings.Replace(l.segs[s][i], `"path":"secret/data/app/`, `"path":"secret/data/ppa/`, 1)
		var kept []string
		for k, line := range l.segs[s] {
			if k > i && isCheckpoint(line) {
				continue
			}
			kept = append(kept, line)
		}
		for _, line := range old { // past the trusted checkpoint's seq
			if !isCheckpoint(line) {
				kept = append(kept, line)
			}
		}
		l.segs[s] = kept
		l.rehash(s, i)
	}},
	{"delete an entry", kinds(chain.KindDeleted), false, func(t *testing.T, l *tamperLog, _ *tamperFixture) {
		i := l.entryIndex(t, 1, 4)
		l.segs[1] = append(l.segs[1][:i], l.segs[1][i+1:]...)
	}},
	{"delete an entry and re-hash", kinds(chain.KindForgedCheckpoint, chain.KindTreeMismatch), false, func(t *testing.T, l *tamperLog, _ *tamperFixture) {
		i := l.entryIndex(t, 1, 4)
		l.segs[1] = append(l.segs[1][:i], l.segs[1][i+1:]...)
		l.rehash(1, i)
	}},
	{"delete a run of entries, drop the later checkpoints, re-hash", kinds(chain.KindCheckpointMissing, chain.KindCheckpointMismatch, chain.KindTruncated), false, func(t *testing.T, l *tamperLog, _ *tamperFixture) {
		s := l.last()
		i := l.entryIndex(t, s, 4)
		var kept []string
		for k, line := range l.segs[s] {
			if k >= i && k < i+6 || k > i && isCheckpoint(line) {
				continue
			}
			kept = append(kept, line)
		}
		l.segs[s] = kept
		l.rehash(s, i)
	}},
	{"insert a forged entry and re-hash", kinds(chain.KindForgedCheckpoint, chain.KindTreeMismatch), false, func(t *testing.T, l *tamperLog, _ *tamperFixture) {
		i := l.entryIndex(t, 1, 2)
		forged := strings.Replace(l.segs[1][i], `"path":"secret/data/app/`, `"path":"secret/data/forged/`, 1)
		l.segs[1] = append(l.segs[1][:i+1], append([]string{forged}, l.segs[1][i+1:]...)...)
		l.rehash(1, i+1)
	}},
	{"replay a line (insert a copy)", kinds(chain.KindReordered), false, func(t *testing.T, l *tamperLog, _ *tamperFixture) {
		i := l.entryIndex(t, 1, 2)
		l.segs[1] = append(l.segs[1][:i+1], append([]string{l.segs[1][i]}, l.segs[1][i+1:]...)...)
	}},
	{"swap two lines", kinds(chain.KindReordered), false, func(t *testing.T, l *tamperLog, _ *tamperFixture) {
		i := l.entryIndex(t, 1, 2)
		l.segs[1][i], l.segs[1][i+1] = l.segs[1][i+1], l.segs[1][i]
	}},
	{"truncate the lines after the last checkpoint of a running server", kinds(chain.KindDeleted), true, func(t *testing.T, l *tamperLog, _ *tamperFixture) {
		s := l.last()
		k := len(l.segs[s]) - 1
		for k > 0 && !isCheckpoint(l.segs[s][k]) {
			k--
		}
		if k == len(l.segs[s])-1 {
			t.Fatal("setup: the running log has no lines after its last checkpoint")
		}
		l.segs[s] = l.segs[s][:k+1]
	}},
	{"truncate through the last checkpoints", kinds(chain.KindTruncated), false, func(t *testing.T, l *tamperLog, _ *tamperFixture) {
		s := l.last()
		l.segs[s] = l.segs[s][:len(l.segs[s])-5]
	}},
	{"cut a rotated segment in the middle of a line", kinds(chain.KindMalformed, chain.KindDeleted), false, func(t *testing.T, l *tamperLog, _ *tamperFixture) {
		n := len(l.segs[1])
		l.segs[1][n-3] = l.segs[1][n-3][:40]
		l.segs[1] = l.segs[1][:n-2]
	}},
	{"delete the active segment", kinds(chain.KindTruncated), false, func(t *testing.T, l *tamperLog, _ *tamperFixture) {
		l.files, l.segs = l.files[:l.last()], l.segs[:l.last()]
	}},
	{"delete the first segment", kinds(chain.KindDeleted), false, func(t *testing.T, l *tamperLog, _ *tamperFixture) {
		l.files, l.segs = l.files[1:], l.segs[1:]
	}},
	{"delete a middle segment", kinds(chain.KindDeleted), false, func(t *testing.T, l *tamperLog, _ *tamperFixture) {
		l.files, l.segs = append(l.files[:1:1], l.files[2:]...), append(l.segs[:1:1], l.segs[2:]...)
	}},
	{"delete every rotated segment", kinds(chain.KindDeleted), false, func(t *testing.T, l *tamperLog, _ *tamperFixture) {
		l.files, l.segs = l.files[l.last():], l.segs[l.last():]
	}},
	{"replace a segment with another node's", kinds(chain.KindSplice), false, func(t *testing.T, l *tamperLog, fx *tamperFixture) {
		b, err := os.ReadFile(fx.other[1])
		if err != nil {
			t.Fatal(err)
		}
		l.segs[1] = strings.SplitAfter(strings.TrimSuffix(string(b), "\n")+"\n", "\n")[:strings.Count(string(b), "\n")]
	}},
	{"replace the active segment with an older copy of itself", kinds(chain.KindTruncated, chain.KindSplice, chain.KindDeleted, chain.KindCheckpointMismatch), false, func(t *testing.T, l *tamperLog, fx *tamperFixture) {
		b, err := os.ReadFile(filepath.Join(fx.older, "audit.log"))
		if err != nil {
			t.Fatal(err)
		}
		l.segs[l.last()] = strings.SplitAfter(strings.TrimSuffix(string(b), "\n")+"\n", "\n")[:strings.Count(string(b), "\n")]
	}},
	{"roll the whole log back to an older backup", kinds(chain.KindTruncated), false, func(t *testing.T, l *tamperLog, fx *tamperFixture) {
		old := loadTamperLog(t, fx.older)
		for i := range old.files {
			old.files[i] = filepath.Join(l.dir, filepath.Base(old.files[i]))
		}
		l.files, l.segs = old.files, old.segs
	}},
	{"replace the whole log with one signed by another key", kinds(chain.KindForgedCheckpoint), false, func(t *testing.T, l *tamperLog, fx *tamperFixture) {
		f := loadTamperLog(t, fx.foreign)
		for i := range f.files {
			f.files[i] = filepath.Join(l.dir, filepath.Base(f.files[i]))
		}
		l.files, l.segs = f.files, f.segs
	}},
	{"delete the first segment and forge a retention record", kinds(chain.KindDeleted, chain.KindAppendedAfterClose), false, func(t *testing.T, l *tamperLog, _ *tamperFixture) {
		_, seq, _, _, h := members(l.segs[0][len(l.segs[0])-1])
		ev := fmt.Sprintf(`{"type":"vigil.event","event":{"kind":"segments_deleted","detail":"retention","time":"2026-01-01T00:00:00Z","deleted":[{"index":1,"first_seq":1,"last_seq":%d,"last_hash":"%s","name":"x"}]},`, seq, h)
		l.files, l.segs = l.files[1:], l.segs[1:]
		s := l.last()
		l.segs[s] = append(l.segs[s], ev+`"seq":1,"node_id":"test-node","prev_hash":"`+strings.Repeat("0", 64)+`","hash":"`+strings.Repeat("0", 64)+"\"}\n")
		l.rehash(s, len(l.segs[s])-1)
	}},
	{"strip one checkpoint", kinds(chain.KindDeleted), false, func(t *testing.T, l *tamperLog, _ *tamperFixture) {
		for i, line := range l.segs[1] {
			if i > 2 && isCheckpoint(line) {
				l.segs[1] = append(l.segs[1][:i], l.segs[1][i+1:]...)
				return
			}
		}
	}},
	{"strip every checkpoint and re-hash", kinds(chain.KindCheckpointMissing, chain.KindTreeMismatch, chain.KindTruncated), false, func(t *testing.T, l *tamperLog, _ *tamperFixture) {
		for s := range l.segs {
			var kept []string
			for _, line := range l.segs[s] {
				if !isCheckpoint(line) {
					kept = append(kept, line)
				}
			}
			l.segs[s] = kept
		}
		l.rehash(0, 1)
	}},
	{"forge a checkpoint signature", kinds(chain.KindForgedCheckpoint), false, func(t *testing.T, l *tamperLog, _ *tamperFixture) {
		for i, line := range l.segs[1] {
			if isCheckpoint(line) {
				j := strings.Index(line, `"signature":"`) + len(`"signature":"`)
				l.segs[1][i] = line[:j] + strings.Repeat("A", 86) + "==" + line[j+88:]
				l.rehash(1, i)
				return
			}
		}
	}},
	{"re-sign a checkpoint with another key", kinds(chain.KindForgedCheckpoint), false, func(t *testing.T, l *tamperLog, _ *tamperFixture) {
		_, key, _ := ed25519.GenerateKey(nil)
		for i, line := range l.segs[1] {
			if isCheckpoint(line) {
				a := strings.Index(line, `"checkpoint":`) + len(`"checkpoint":`)
				b := strings.Index(line, `,"signature":"`)
				sig := ed25519.Sign(key, []byte(line[a:b]))
				j := b + len(`,"signature":"`)
				k := strings.Index(line, `","key_id":"`)
				l.segs[1][i] = line[:j] + encodeB64(sig) + line[k:]
				l.rehash(1, i)
				return
			}
		}
	}},
	{"pad after the clean close", kinds(chain.KindAppendedAfterClose), false, func(t *testing.T, l *tamperLog, _ *tamperFixture) {
		s := l.last()
		n := len(l.segs[s])
		i := l.entryIndex(t, s, 2)
		l.segs[s] = append(l.segs[s], l.segs[s][i], l.segs[s][i+1])
		l.rehash(s, n)
	}},
}

// detection is what one check reported.
type detection struct {
	detected bool
	kind     string
	detail   string
}

var kindRE = regexp.MustCompile(`FAILED: ([a-z_]+) at seq`)

// TestAuditTamperSuite runs every attack three ways and prints the table.
func TestAuditTamperSuite(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server per attack")
	}
	fx := buildTamperFixture(t)
	type row struct {
		name                     string
		offline, server, restart detection
		// filesOnly is `vigil audit verify -offline` with nothing but the
		// files (key from the headers, no trusted checkpoint): for the
		// record of what the files alone can show, not asserted.
		filesOnly detection
	}
	var rows []row
	for _, a := range tamperAttacks {
		a := a
		t.Run(a.name, func(t *testing.T) {
			dir := fx.work
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			copyTree(t, fx.base, dir)
			auditDir := filepath.Join(dir, "audit")
			var s *servertest.Server
			if a.live {
				s = auditTamperServer(t, dir)
				writeTraffic(t, s, 5)
				l := loadTamperLog(t, auditDir)
				a.tamper(t, l, fx)
				l.save(t)
			} else {
				l := loadTamperLog(t, auditDir)
				a.tamper(t, l, fx)
				l.save(t)
				s = auditTamperServer(t, dir)
			}
			r := row{name: a.name}
			if !a.live {
				r.restart = restartDetection(t, s)
			}
			pointCLI(t, s)
			if fo := runCLI(t, "audit", "verify", "-offline", auditDir); fo.code != 0 {
				r.filesOnly.detected = true
				if m := kindRE.FindStringSubmatch(fo.out); m != nil {
					r.filesOnly.kind = m[1]
				} else if strings.Contains(fo.out, "not covered") {
					r.filesOnly.kind = "uncovered tail"
				}
			}
			out := runCLI(t, "audit", "verify", auditDir)
			r.offline = detection{detail: out.out + out.err}
			if m := kindRE.FindStringSubmatch(out.out); out.code == 1 && m != nil {
				r.offline.detected, r.offline.kind = true, m[1]
			}
			sec, err := s.Client.Logical().Write("sys/audit/verify", nil)
			if err != nil {
				t.Fatalf("sys/audit/verify: %v", err)
			}
			dv, _ := sec.Data["devices"].(map[string]any)["file"].(map[string]any)
			if ok, _ := dv["ok"].(bool); !ok {
				r.server = detection{detected: true, kind: fmt.Sprint(dv["failure_kind"]), detail: fmt.Sprint(dv["failure"])}
			} else {
				r.server.detail = fmt.Sprint(dv["summary"])
			}
			if a.live {
				s.Restart()
				r.restart = restartDetection(t, s)
			}
			s.Stop()
			for _, c := range []struct {
				mode string
				d    detection
			}{{"offline verify", r.offline}, {"server-side verify", r.server}, {"restart", r.restart}} {
				if !c.d.detected {
					t.Errorf("%s did not detect it: %s", c.mode, c.d.detail)
					continue
				}
				good := false
				for _, k := range a.kinds {
					good = good || c.d.kind == string(k)
				}
				if !good {
					t.Errorf("%s named it %s, want one of %v: %s", c.mode, c.d.kind, a.kinds, c.d.detail)
				}
			}
			rows = append(rows, r)
		})
	}
	// The table for the record (go test -v -run TestAuditTamperSuite).
	var b strings.Builder
	fmt.Fprintf(&b, "\n%-4s %-78s %-22s %-22s %-22s | %s\n", "#", "attack", "offline verify", "server-side verify", "restart", "files only (-offline)")
	count := [4]int{}
	for i, r := range rows {
		cell := func(d detection, n int) string {
			if !d.detected {
				return "MISSED"
			}
			count[n]++
			return d.kind
		}
		fmt.Fprintf(&b, "%-4d %-78s %-22s %-22s %-22s | %s\n", i+1, r.name, cell(r.offline, 0), cell(r.server, 1), cell(r.restart, 2), cell(r.filesOnly, 3))
	}
	fmt.Fprintf(&b, "detected: offline %d/%d, server-side %d/%d, restart %d/%d (files only, no anchor: %d/%d)\n",
		count[0], len(rows), count[1], len(rows), count[2], len(rows), count[3], len(rows))
	t.Log(b.String())
}

// restartDetection reads whether the server refused the file device at
// start (Open's check, or the full verification that follows it), and the
// kind it named.
func restartDetection(t *testing.T, s *servertest.Server) detection {
	t.Helper()
	var dv map[string]any
	for deadline := time.Now().Add(60 * time.Second); ; {
		sec, err := s.Client.Logical().Read("sys/audit/witnesses")
		if err != nil {
			t.Fatalf("sys/audit/witnesses: %v", err)
		}
		dv, _ = sec.Data["devices"].(map[string]any)["file"].(map[string]any)
		if dv["startup_verification"] != "running" || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond) // polling a server-side state, not synchronising test goroutines
	}
	ref, _ := dv["refused"].(string)
	if ref == "" {
		return detection{detail: "the device opened"}
	}
	kind, _, _ := strings.Cut(ref, " at seq")
	return detection{detected: true, kind: kind, detail: ref}
}

func encodeB64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
