package chain

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/audit/merkle"
)

// writeSegs writes segments to a folder under the writer's names, oldest
// first, and returns the active path.
func writeSegs(t testing.TB, s segLines) string {
	t.Helper()
	dir := t.TempDir()
	for i, lines := range s {
		name := fmt.Sprintf("audit-2025-03-14T09-26-%02d.000.log", i)
		if i == len(s)-1 {
			name = "audit.log"
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(strings.Join(lines, "")), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "audit.log")
}

// strictReport verifies s strictly with the key taken from its headers.
func strictReport(t testing.TB, s segLines, opts VerifyOptions) *Report {
	t.Helper()
	opts.Strict = true
	rep, err := VerifyLog(context.Background(), writeSegs(t, s), opts)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// dropCheckpointsFrom removes every checkpoint line from index i of the
// last segment on and re-hashes what follows: the drop-later-checkpoints
// attack.
func dropCheckpointsFrom(t testing.TB, s segLines, i int) segLines {
	last := len(s) - 1
	var kept []string
	for j, l := range s[last] {
		if j >= i && strings.HasPrefix(l, `{"type":"vigil.checkpoint"`) {
			continue
		}
		kept = append(kept, l)
	}
	renumber(t, kept, i)
	s[last] = kept
	return s
}

// renumber rewrites seq, prev_hash and hash of lines[from:] so that they
// follow lines[from-1]: an attacker who knows the format re-hashing.
func renumber(t testing.TB, lines []string, from int) {
	t.Helper()
	f, err := parseChain([]byte(strings.TrimSuffix(lines[from-1], "\n")))
	if err != nil {
		t.Fatal(err)
	}
	prev, seq := append([]byte(nil), f.Hash...), f.Seq
	lh := newLineHasher()
	var h [hashHexLen]byte
	for i := from; i < len(lines); i++ {
		line := []byte(strings.TrimSuffix(lines[i], "\n"))
		g, err := parseChain(line)
		if err != nil {
			t.Fatal(err)
		}
		seq++
		lines[i] = string(appendLine(nil, append(line[:g.BodyEnd:g.BodyEnd], '}'), seq, string(g.NodeID), prev, lh, h[:]))
		prev = append(prev[:0], h[:]...)
	}
}

func TestStrictAcceptsWriterLogs(t *testing.T) {
	base, head := buildLog(t, "node-a", "a")
	rep := strictReport(t, base.clone(), VerifyOptions{Checkpoint: &head})
	if !rep.OK || rep.KeySource != "segment headers" || !rep.TreeChecked || rep.Uncovered != 0 || rep.Anchor != "genesis" ||
		rep.ChainStart != 1 || rep.Tree.Size != rep.LastSeq || !rep.TrustedCheckpointVerified {
		t.Fatalf("strict verification of an untouched log: %+v", rep)
	}
	if rep := strictReport(t, base.clone(), VerifyOptions{PublicKey: pub(testKey(1))}); !rep.OK || rep.KeySource != "given" {
		t.Fatalf("with the key given: %v", rep)
	}
	// The final checkpoint cut off: one line is not covered.
	s := base.clone()
	s[len(s)-1] = s[len(s)-1][:len(s[len(s)-1])-1]
	if rep := strictReport(t, s, VerifyOptions{}); !rep.OK || rep.Uncovered != 1 {
		t.Fatalf("uncovered tail: %v", rep)
	}
}

// Every rule strict mode adds catches the attack it is for.
func TestStrictCatches(t *testing.T) {
	base, head := buildLog(t, "node-a", "a")
	last := len(base) - 1
	cases := []struct {
		name   string
		tamper func(s segLines) segLines
		opts   VerifyOptions
		want   FailureKind
	}{
		{"drop the later checkpoints and re-hash", func(s segLines) segLines {
			return dropCheckpointsFrom(t, s, 2)
		}, VerifyOptions{}, KindCheckpointMissing},
		{"pad after a clean close", func(s segLines) segLines {
			l := s[last]
			s[last] = append(l, l[len(l)-4:len(l)-2]...) // two old lines again
			renumber(t, s[last], len(l))
			return s
		}, VerifyOptions{}, KindAppendedAfterClose},
		{"strip the close checkpoint, pad and re-hash", func(s segLines) segLines {
			l := s[last][:len(s[last])-1]
			l = append(l, s[1][3], s[1][4])
			renumber(t, l, len(s[last])-1)
			s[last] = l
			return s
		}, VerifyOptions{}, KindCheckpointMissing},
		{"verify with another key", func(s segLines) segLines { return s }, VerifyOptions{PublicKey: pub(testKey(7))}, KindForgedCheckpoint},
		{"a header names another key (re-hashed)", func(s segLines) segLines {
			other := pub(testKey(7))
			s[last][0] = strings.Replace(s[last][0], `"key_id":"`+KeyID(pub(testKey(1))), `"key_id":"`+KeyID(other), 1)
			renumber(t, s[last], 0+1)
			relinkFirst(t, s, last)
			return s
		}, VerifyOptions{}, KindForgedCheckpoint},
		{"a header's Merkle frontier changed (re-hashed)", func(s segLines) segLines {
			h := s[last][0]
			i := strings.Index(h, `"frontier":["`) + len(`"frontier":["`)
			s[last][0] = h[:i] + "00" + h[i+2:]
			relinkFirst(t, s, last)
			return s
		}, VerifyOptions{}, KindTreeMismatch},
		{"drop the first segment", func(s segLines) segLines { return s[1:] }, VerifyOptions{}, KindDeleted},
		{"truncate past the trusted checkpoint", func(s segLines) segLines {
			s[last] = s[last][:len(s[last])-4]
			return s
		}, VerifyOptions{Checkpoints: []Checkpoint{head}}, KindTruncated},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rep := strictReport(t, tc.tamper(base.clone()), tc.opts)
			if rep.OK || rep.Failure.Kind != tc.want {
				t.Fatalf("want %s, got %v", tc.want, rep)
			}
			t.Log(rep.Failure)
		})
	}
}

// relinkFirst re-hashes segment i from its first line on, as if the line
// before it were unchanged, and fixes nothing else: the line's own hash is
// recomputed over its new content.
func relinkFirst(t testing.TB, s segLines, i int) {
	t.Helper()
	relink(t, s[i], 0)
	f, _ := parseChain([]byte(strings.TrimSuffix(s[i-1][len(s[i-1])-1], "\n")))
	// relink from 0 assumed the genesis prev_hash; restore the real one.
	line := []byte(strings.TrimSuffix(s[i][0], "\n"))
	g, _ := parseChain(line)
	var h [hashHexLen]byte
	s[i][0] = string(appendLine(nil, append(line[:g.BodyEnd:g.BodyEnd], '}'), g.Seq, "node-a", f.Hash, newLineHasher(), h[:]))
	relink(t, s[i], 1)
}

// Deleting the oldest segments is fine when retention recorded it first,
// and reported otherwise.
func TestStrictRetentionRecord(t *testing.T) {
	cfg := testConfig(t)
	cfg.maxBytes = 2 << 10
	cfg.CheckpointEvery = 5
	w := MustOpen(t, cfg)
	for i := 0; i < 30; i++ {
		MustAppend(t, w, vaultBody(i))
	}
	segs, err := w.Segments()
	if err != nil || len(segs) < 4 {
		t.Fatalf("segments %v %v", segs, err)
	}
	var del []DeletedSegment
	for _, si := range segs[:2] {
		del = append(del, DeletedSegment{Index: si.Index, FirstSeq: si.FirstSeq, LastSeq: si.LastSeq, LastHash: si.LastHash, Name: filepath.Base(si.Path)})
	}
	// Deleted without a record: reported.
	copyDir := t.TempDir()
	for _, si := range segs[2:] {
		b, _ := os.ReadFile(si.Path)
		os.WriteFile(filepath.Join(copyDir, filepath.Base(si.Path)), b, 0o600)
	}
	rep, err := VerifyLog(context.Background(), filepath.Join(copyDir, "audit.log"), VerifyOptions{Strict: true})
	if err != nil || rep.OK || rep.Failure.Kind != KindDeleted || !strings.Contains(rep.Failure.Detail, "segments 1..2") {
		t.Fatalf("first segments deleted without a record: %v %v", rep, err)
	}
	if err := w.RecordDeletion(del, "retention: 2 segments"); err != nil {
		t.Fatal(err)
	}
	for _, si := range segs[:2] {
		os.Remove(si.Path)
	}
	MustAppend(t, w, vaultBody(99))
	w.Close()
	rep = MustVerifyLog(t, cfg.Path, VerifyOptions{Strict: true})
	if rep.Anchor != "retention" || len(rep.Deleted) != 2 || !rep.TreeChecked {
		t.Fatalf("after recorded retention: %+v", rep)
	}
	// The writer reopens it when told how far retention deleted, and
	// refuses it otherwise, or when more is missing.
	if _, err := Open(cfg); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("reopened a log missing its first segments with no retention record: %v", err)
	}
	cfg.DeletedThrough = &del[0]
	if _, err := Open(cfg); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("reopened a log missing segment 2 with retention recorded through segment 1: %v", err)
	}
	cfg.DeletedThrough = &del[1]
	MustOpen(t, cfg).Close()
	// A gap in the middle is refused whatever retention says.
	segs, _ = ListSegments(cfg.Path)
	os.Remove(segs[1].Path)
	if _, err := Open(cfg); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("reopened a log with a missing middle segment: %v", err)
	}
}

// Open re-verifies from the newest trusted checkpoint and refuses every
// rewrite that keeps the log's end looking normal.
func TestOpenRefusesRewrites(t *testing.T) {
	build := func(t *testing.T) (Config, Checkpoint) {
		cfg := testConfig(t)
		cfg.CheckpointEvery = 5
		cfg.NoMerkleStore = true
		var last Checkpoint
		cfg.CheckpointSink = func(cp Checkpoint) error { last = cp; return nil }
		w := MustOpen(t, cfg)
		for i := 0; i < 12; i++ {
			MustAppend(t, w, vaultBody(i))
		}
		w.Close()
		return cfg, last
	}
	rewrite := func(t *testing.T, path string, f func(lines []string) []string) {
		lines := readLines(t, path)
		os.WriteFile(path, []byte(strings.Join(f(lines), "")), 0o600)
	}
	cases := []struct {
		name   string
		tamper func(lines []string) []string
		want   FailureKind
	}{
		{"edit an entry, drop the later checkpoints, pad past S with re-hashed old entries", func(l []string) []string {
			l[6] = strings.Replace(l[6], "secret/data/app", "secret/data/xyz", 1)
			var out []string
			for i, x := range l {
				if i > 6 && strings.HasPrefix(x, `{"type":"vigil.checkpoint"`) {
					continue
				}
				out = append(out, x)
			}
			out = append(out, l[4], l[5], l[7])
			renumber(t, out, 6)
			return out
		}, KindCheckpointMissing},
		{"delete an entry and re-hash", func(l []string) []string {
			out := append(append([]string(nil), l[:5]...), l[6:]...)
			renumber(t, out, 5)
			return out
		}, KindForgedCheckpoint},
		{"cut the tail past the trusted checkpoint", func(l []string) []string { return l[:len(l)-3] }, KindTruncated},
		{"remove lines before the last batch, keep the end", func(l []string) []string {
			return append(append([]string(nil), l[:len(l)-5]...), l[len(l)-2:]...)
		}, KindDeleted},
		{"pad after the close", func(l []string) []string {
			out := append(l, l[4])
			renumber(t, out, len(l))
			return out
		}, KindAppendedAfterClose},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, last := build(t)
			rewrite(t, cfg.Path, tc.tamper)
			cfg.TrustedCheckpoints = []Checkpoint{last}
			_, err := Open(cfg)
			var re *RefusalError
			if !errors.As(err, &re) || !errors.Is(err, ErrUntrusted) || re.Failure.Kind != tc.want {
				t.Fatalf("want a refusal naming %s, got %v", tc.want, err)
			}
			t.Log(err)
		})
	}
}

// After a refusal, Relink moves the old files aside and starts a chain
// whose first header links to the last trusted checkpoint; seqs go on
// above everything the old chain used.
func TestRelink(t *testing.T) {
	cfg := testConfig(t)
	var last Checkpoint
	cfg.CheckpointSink = func(cp Checkpoint) error { last = cp; return nil }
	w := MustOpen(t, cfg)
	for i := 0; i < 5; i++ {
		MustAppend(t, w, vaultBody(i))
	}
	w.Close()
	head, _ := w.Head()
	lines := readLines(t, cfg.Path)
	os.WriteFile(cfg.Path, []byte(strings.Join(lines[:len(lines)-4], "")), 0o600)
	cfg.TrustedCheckpoints = []Checkpoint{last}
	_, err := Open(cfg)
	var re *RefusalError
	if !errors.As(err, &re) {
		t.Fatalf("truncated log opened: %v", err)
	}
	cfg.CheckpointSink = nil
	w2, err := Relink(cfg, Link{Previous: last.JSON(), Failure: re.Failure.Error(), Reason: "ticket 42: disk restored from backup"})
	if err != nil {
		t.Fatal(err)
	}
	a := MustAppend(t, w2, vaultBody(9))
	w2.Close()
	if a.Seq <= head {
		t.Fatalf("relinked chain reuses seqs: first entry seq %d, old head %d", a.Seq, head)
	}
	rep := MustVerifyLog(t, cfg.Path, VerifyOptions{Strict: true, Checkpoint: &last})
	if rep.Anchor != "relink" || rep.Relink == nil || rep.Relink.Previous.Seq != last.Seq || rep.ChainStart != head+1 ||
		!strings.HasPrefix(rep.Relink.MovedTo, "audit.log.broken-") || len(rep.Warnings) != 1 || rep.Warnings[0].Kind != WarnOtherChain {
		t.Fatalf("relinked chain: anchor %s relink %+v chain start %d (head %d) warnings %v", rep.Anchor, rep.Relink, rep.ChainStart, head, rep.Warnings)
	}
	moved, _ := filepath.Glob(filepath.Join(filepath.Dir(cfg.Path), rep.Relink.MovedTo, "audit.log"))
	if len(moved) != 1 {
		t.Fatal("old active file not kept in the broken folder")
	}
	// The new chain reopens against its own checkpoints; the old chain's
	// checkpoint no longer applies.
	cfg.TrustedCheckpoints = []Checkpoint{last, *rep.LastCheckpoint}
	MustOpen(t, cfg).Close()
}

// Inclusion proofs for every line against the newest checkpoint, and
// consistency between checkpoints, verify offline; an edited line or a
// foreign key does not. A lost Merkle store is rebuilt at Open.
func TestProofs(t *testing.T) {
	cfg := testConfig(t)
	cfg.maxBytes = 3 << 10
	cfg.CheckpointEvery = 7
	var cps []Checkpoint
	cfg.CheckpointSink = func(cp Checkpoint) error { cps = append(cps, cp); return nil }
	w := MustOpen(t, cfg)
	for i := 0; i < 40; i++ {
		MustAppend(t, w, vaultBody(i))
	}
	last, err := w.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	k := pub(cfg.Signer)
	for seq := uint64(1); seq <= last.Seq; seq++ {
		b, err := w.Prove(seq, nil)
		if err != nil {
			t.Fatalf("prove %d: %v", seq, err)
		}
		if err := VerifyInclusionBundle(b, k); err != nil {
			t.Fatalf("proof of %d: %v", seq, err)
		}
		if seq == 9 {
			bad := *b
			bad.Line = strings.Replace(b.Line, "secret/data/app", "secret/data/xyz", 1)
			if VerifyInclusionBundle(&bad, k) == nil {
				t.Fatal("an edited line's proof verified")
			}
			if VerifyInclusionBundle(b, pub(testKey(5))) == nil {
				t.Fatal("proof verified with another key")
			}
			bad = *b
			bad.Proof = append([]string(nil), b.Proof...)
			bad.Proof[0] = merkle.EmptyRoot.String()
			if VerifyInclusionBundle(&bad, k) == nil {
				t.Fatal("a changed path verified")
			}
		}
	}
	first, err := w.CheckpointAt(2)
	if err != nil || first.Seq != 2 {
		t.Fatalf("CheckpointAt(2): %+v %v", first, err)
	}
	cb, err := w.ProveConsistency(first, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyConsistencyBundle(cb, k); err != nil {
		t.Fatal(err)
	}
	w.Close()
	// Lose the store: the next Open rebuilds it from the log.
	os.RemoveAll(cfg.Path + ".merkle")
	cfg.TrustedCheckpoints = []Checkpoint{cps[len(cps)-1]}
	w = MustOpen(t, cfg)
	b, err := w.Prove(5, nil)
	if err != nil || VerifyInclusionBundle(b, k) != nil {
		t.Fatalf("proof after rebuilding the store: %v", err)
	}
	w.Close()
}

// A crash can leave a partial last line, which Open cuts (torn tail); an
// intact line that does not link to the one before it is never a crash
// artifact.
func TestIntactGapIsNotATornTail(t *testing.T) {
	cfg := testConfig(t)
	w := MustOpen(t, cfg)
	for i := 0; i < 6; i++ {
		MustAppend(t, w, vaultBody(i))
	}
	w.Close()
	lines := readLines(t, cfg.Path)
	os.WriteFile(cfg.Path, []byte(strings.Join(append(lines[:len(lines)-1], `{"time":"2025`), "")), 0o600)
	w = MustOpen(t, cfg) // torn: cut, recorded
	w.Close()
	lines = readLines(t, cfg.Path)
	gap := append(append([]string(nil), lines[:len(lines)-4]...), lines[len(lines)-2:]...)
	os.WriteFile(cfg.Path, []byte(strings.Join(gap, "")), 0o600)
	_, err := Open(cfg)
	var re *RefusalError
	if !errors.As(err, &re) || re.Failure.Kind != KindDeleted {
		t.Fatalf("lines cut from before the end opened as a torn tail: %v", err)
	}
}

// A writer without its key (as a server recording while sealed would be)
// starts a segment naming no key and writes unsigned checkpoints: strict
// verification accepts them, says so, and counts those lines as covered
// only once a signed checkpoint follows.
func TestStrictKeylessSegments(t *testing.T) {
	cfg := testConfig(t)
	w := MustOpen(t, cfg)
	MustAppend(t, w, vaultBody(1))
	w.Close()
	keyless := cfg
	keyless.Signer = nil
	w = MustOpen(t, keyless)
	MustAppend(t, w, vaultBody(2))
	w.Close()
	rep := MustVerifyLog(t, cfg.Path, VerifyOptions{Strict: true, PublicKey: pub(cfg.Signer)})
	if rep.Uncovered == 0 || len(rep.Warnings) != 1 || rep.Warnings[0].Kind != WarnUnsigned {
		t.Fatalf("a key-less tail: %+v", rep)
	}
	w = MustOpen(t, cfg)
	MustAppend(t, w, vaultBody(3))
	w.Close()
	rep = MustVerifyLog(t, cfg.Path, VerifyOptions{Strict: true, PublicKey: pub(cfg.Signer)})
	if rep.Uncovered != 0 || len(rep.Warnings) != 1 {
		t.Fatalf("key-less segment followed by signed checkpoints: %+v", rep)
	}
	// An attacker cannot pass signed lines off as key-less ones: a
	// checkpoint stripped of its signature in a keyed segment fails.
	lines := readLines(t, cfg.Path)
	for i, l := range lines {
		if strings.HasPrefix(l, `{"type":"vigil.checkpoint"`) && strings.Contains(l, `"key_id":"`+KeyID(pub(cfg.Signer))) {
			j := strings.Index(l, `"signature":"`)
			k := strings.Index(l, `","key_id":"`)
			l = l[:j] + `"signature":"` + l[k:]
			lines[i] = strings.Replace(l, `"key_id":"`+KeyID(pub(cfg.Signer))+`"`, `"key_id":""`, 1)
			relink(t, lines, i)
			break
		}
	}
	os.WriteFile(cfg.Path, []byte(strings.Join(lines, "")), 0o600)
	if rep, _ := VerifyLog(context.Background(), cfg.Path, VerifyOptions{Strict: true, PublicKey: pub(cfg.Signer)}); rep.OK {
		t.Fatal("a stripped signature in a keyed segment verified")
	}
}

// A checkpoint later than the interval allows (the clock jumped) is a
// warning, not tampering.
func TestStrictLateCheckpointWarns(t *testing.T) {
	cfg := testConfig(t)
	clk := newClock()
	cfg.Now = clk.Now
	cfg.CheckpointInterval = time.Second
	ticks := make(chan time.Time)
	cfg.checkpointTicks = ticks
	w := MustOpen(t, cfg)
	MustAppend(t, w, vaultBody(1))
	clk.Advance(time.Hour)
	ticks <- time.Time{}
	waitFor(t, 5*time.Second, "the timed checkpoint", func() bool { return w.Stats().Checkpoints >= 2 })
	w.Close()
	rep := MustVerifyLog(t, cfg.Path, VerifyOptions{Strict: true})
	late := false
	for _, wn := range rep.Warnings {
		late = late || wn.Kind == WarnCheckpointLate
	}
	if !late {
		t.Fatalf("no checkpoint_late warning: %v", rep)
	}
}

// The plain (non-strict) verification given the key treats a key-less
// segment's unsigned checkpoints as the strict one does: not a forgery,
// and never the last checkpoint it reports. An unsigned checkpoint in a
// keyed segment still fails.
func TestKeylessSegmentsVerifyWithKey(t *testing.T) {
	cfg := testConfig(t)
	keyless := cfg
	keyless.Signer = nil
	w := MustOpen(t, keyless)
	MustAppend(t, w, vaultBody(1))
	w.Close()
	w = MustOpen(t, cfg)
	MustAppend(t, w, vaultBody(2))
	w.Close()
	rep := MustVerifyLog(t, cfg.Path, VerifyOptions{PublicKey: pub(cfg.Signer)})
	if rep.LastCheckpoint == nil || len(rep.LastCheckpoint.Signature) == 0 {
		t.Fatalf("last checkpoint %+v, want a signed one", rep.LastCheckpoint)
	}
	lines := readLines(t, cfg.Path)
	for i := len(lines) - 1; i >= 0; i-- {
		l := lines[i]
		if strings.HasPrefix(l, `{"type":"vigil.checkpoint"`) && strings.Contains(l, `"key_id":"`+KeyID(pub(cfg.Signer))) {
			j := strings.Index(l, `"signature":"`)
			k := strings.Index(l, `","key_id":"`)
			l = l[:j] + `"signature":"` + l[k:]
			lines[i] = strings.Replace(l, `"key_id":"`+KeyID(pub(cfg.Signer))+`"`, `"key_id":""`, 1)
			relink(t, lines, i)
			break
		}
	}
	os.WriteFile(cfg.Path, []byte(strings.Join(lines, "")), 0o600)
	if rep, _ := VerifyLog(context.Background(), cfg.Path, VerifyOptions{PublicKey: pub(cfg.Signer)}); rep.OK {
		t.Fatal("a stripped signature in a keyed segment verified")
	}
}
