package chain

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/vigilsec/vigil/audit/merkle"
)

// startupCheck runs once Open has found the log's head (s.seq, s.hash):
// it never trusts the files over Config.TrustedCheckpoints. It re-verifies
// the chain, strictly, from the segment holding the newest trusted
// checkpoint (or, without one, from the newest segment) to the head: every
// line's hash and link, every checkpoint's signature and Merkle root, the
// cadence and start/close rules, and each trusted checkpoint the chain
// covers. The same pass restores the Merkle tree (and the store, when it
// does not match the segment headers). Any failure is a *RefusalError.
func (w *Writer) startupCheck() error {
	s := &w.st
	infos, err := segmentInfos(w.cfg.Path)
	if err != nil {
		return fmt.Errorf("audit chain: open: %w", err)
	}
	var trusted []Checkpoint
	var newest *Checkpoint
	for i := range w.cfg.TrustedCheckpoints {
		cp := w.cfg.TrustedCheckpoints[i]
		if cp.NodeID != w.cfg.NodeID || cp.Seq == 0 {
			continue
		}
		trusted = append(trusted, cp)
	}
	if len(infos) == 0 {
		// A brand-new chain. A trusted checkpoint means one existed.
		for i := range trusted {
			if trusted[i].Seq > s.seq {
				return &RefusalError{Trusted: &trusted[i], Failure: &Failure{Kind: KindTruncated, Seq: 1, File: w.cfg.Path,
					Detail: fmt.Sprintf("there is no log at all, but the trusted checkpoint covers seq %d", trusted[i].Seq)}}
			}
		}
		s.chainStart, s.tree = 1, merkle.Frontier{}
		w.noteCheckpoint(Checkpoint{}, 1)
		return nil
	}
	sort.SliceStable(infos, func(i, j int) bool { return infos[i].Index < infos[j].Index })
	last := infos[len(infos)-1]
	chainStart := last.Header.ChainStart
	if chainStart == 0 {
		return &RefusalError{Failure: &Failure{Kind: KindMalformed, Seq: last.FirstSeq, File: last.Path,
			Detail: "the segment header has no chain_start: written by an older format, or edited"}}
	}
	if err := w.checkSegmentSet(infos, chainStart); err != nil {
		return err
	}
	// Checkpoints of the chain a relink replaced do not apply.
	kept := trusted[:0]
	for _, cp := range trusted {
		if cp.Seq >= chainStart {
			kept = append(kept, cp)
		}
	}
	trusted = kept
	for i := range trusted {
		cp := &trusted[i]
		if cp.Seq > s.seq {
			return &RefusalError{Trusted: cp, Failure: &Failure{Kind: KindTruncated, Seq: s.seq + 1, File: last.Path,
				Detail: fmt.Sprintf("the log ends at seq %d but the trusted checkpoint%s covers seq %d: lines were removed or an older copy was restored", s.seq, sourceOf(cp), cp.Seq)}}
		}
		if newest == nil || cp.Seq > newest.Seq {
			newest = cp
		}
	}
	// The segment to start from: the one holding the newest trusted
	// checkpoint, else the newest one. Verification must reach the end
	// without a gap.
	from := len(infos) - 1
	if newest != nil {
		from = -1
		for i, si := range infos {
			if si.FirstSeq <= newest.Seq && si.Header.ChainStart == chainStart {
				from = i
			}
		}
		if from < 0 {
			return &RefusalError{Trusted: newest, Failure: &Failure{Kind: KindDeleted, Seq: newest.Seq,
				Detail: fmt.Sprintf("no segment holds seq %d, which the trusted checkpoint%s covers", newest.Seq, sourceOf(newest))}}
		}
	}
	// The Merkle store must hold the tree up to the starting segment;
	// otherwise rebuild it from the chain's first segment when there is
	// one (the store is derived data: the log is the truth).
	startTree := infos[from].Header.Tree
	if w.store != nil && !w.storeMatches(startTree) {
		first := -1
		for i, si := range infos {
			if si.FirstSeq == chainStart {
				first = i
			}
		}
		if first >= 0 && first <= from {
			w.log.Warn("audit chain: the Merkle store does not match the log; rebuilding it from the chain's first segment", "segments", len(infos)-first)
			from, startTree = first, infos[first].Header.Tree
		} else {
			w.log.Error("audit chain: the Merkle store does not match the log and the chain's first segments are gone; proofs are unavailable")
			w.proofs.storeErr = errors.New("the Merkle store does not match the log and the chain's first segments were deleted")
			w.closeStore()
		}
	}
	var storeTree merkle.Frontier
	var storeErr error
	if w.store != nil {
		if err := w.store.Truncate(startTree.Size); err != nil {
			return fmt.Errorf("audit chain: open: Merkle store: %w", err)
		}
		storeTree, storeErr = merkle.FrontierAt(w.store, startTree.Size)
		if storeErr != nil {
			return fmt.Errorf("audit chain: open: Merkle store: %w", storeErr)
		}
	}
	paths := make([]string, 0, len(infos)-from)
	for _, si := range infos[from:] {
		paths = append(paths, si.Path)
	}
	opts := VerifyOptions{NodeID: w.cfg.NodeID, Checkpoints: trusted, Strict: true, AllowUnsigned: w.cfg.Signer == nil}
	if w.cfg.Signer != nil {
		opts.PublicKey = w.cfg.Signer.Public().(ed25519.PublicKey)
	}
	if h := infos[from].Header; infos[from].FirstSeq != chainStart {
		opts.StartAfter = &StartAfter{Seq: h.PrevSegmentLastSeq, Hash: h.PrevSegmentLastHash}
	}
	if w.store != nil {
		n := 0
		opts.OnLeaf = func(_ uint64, leaf merkle.Hash) {
			storeTree.Append(leaf, w.store.Add)
			if n++; n%4096 == 0 && storeErr == nil {
				storeErr = w.store.Flush()
			}
		}
	}
	rep, err := Verify(context.Background(), FileSources(paths), opts)
	if err != nil {
		return fmt.Errorf("audit chain: open: re-verifying the log: %w", err)
	}
	if !rep.OK {
		return &RefusalError{Failure: rep.Failure, Trusted: newest}
	}
	if rep.LastSeq != s.seq || rep.LastHash != string(s.hash[:]) {
		return &RefusalError{Trusted: newest, Failure: &Failure{Kind: KindSplice, Seq: rep.LastSeq, File: last.Path,
			Detail: fmt.Sprintf("the segments end at seq %d (%s), the active file at seq %d (%s)", rep.LastSeq, rep.LastHash, s.seq, s.hash[:])}}
	}
	if w.store != nil {
		if storeErr == nil {
			storeErr = w.store.Flush()
		}
		if storeErr != nil {
			w.log.Error("audit chain: Merkle store write failed; proofs are unavailable", "err", storeErr)
			w.proofs.storeErr = storeErr
			w.closeStore()
		}
	}
	s.chainStart, s.tree = chainStart, rep.Tree
	if rep.LastCheckpoint != nil {
		s.lastCP = *rep.LastCheckpoint
	}
	w.noteCheckpoint(s.lastCP, chainStart)
	// A header describes the key and cadence of the lines after it: a
	// change starts a new segment.
	if s.f != nil && s.switchReason == "" {
		id, pub := w.cfg.keyFields()
		every, ms := w.cfg.cadence()
		if h := s.seg; h.KeyID != id || h.PublicKey != pub || h.CheckpointEvery != every || h.CheckpointIntervalMS != ms {
			s.switchReason = ReasonStart
		}
	}
	return nil
}

// checkSegmentSet checks, from the headers alone, that the current chain's
// segments are all there: consecutive indexes, and missing first segments
// only as far as retention recorded deleting them.
func (w *Writer) checkSegmentSet(infos []SegmentInfo, chainStart uint64) error {
	var cur []SegmentInfo
	for _, si := range infos {
		if si.Header.ChainStart == chainStart {
			cur = append(cur, si)
		}
	}
	for i := 1; i < len(cur); i++ {
		if cur[i].Index != cur[i-1].Index+1 {
			return &RefusalError{Failure: &Failure{Kind: KindDeleted, Seq: cur[i].FirstSeq, File: cur[i].Path,
				Detail: fmt.Sprintf("segment(s) %d..%d are missing between %s and %s", cur[i-1].Index+1, cur[i].Index-1,
					filepath.Base(cur[i-1].Path), filepath.Base(cur[i].Path))}}
		}
	}
	if len(cur) == 0 || cur[0].FirstSeq == chainStart {
		return nil
	}
	first := cur[0]
	d := w.cfg.DeletedThrough
	switch {
	case d == nil:
		return &RefusalError{Failure: &Failure{Kind: KindDeleted, Seq: chainStart, File: first.Path,
			Detail: fmt.Sprintf("the oldest segment is %d (from seq %d): segments 1..%d are missing and retention never deleted any", first.Index, first.FirstSeq, first.Index-1)}}
	case d.Index+1 < first.Index:
		return &RefusalError{Failure: &Failure{Kind: KindDeleted, Seq: d.LastSeq + 1, File: first.Path,
			Detail: fmt.Sprintf("the oldest segment is %d: segments %d..%d are missing, but retention deleted only up to segment %d", first.Index, d.Index+1, first.Index-1, d.Index)}}
	case d.Index+1 == first.Index && (d.LastSeq != first.Header.PrevSegmentLastSeq || d.LastHash != first.Header.PrevSegmentLastHash):
		return &RefusalError{Failure: &Failure{Kind: KindSplice, Seq: first.FirstSeq, File: first.Path,
			Detail: fmt.Sprintf("segment %d does not continue the segment %d retention deleted (it ended at seq %d)", first.Index, d.Index, d.LastSeq)}}
	}
	return nil
}

// storeMatches reports whether the Merkle store holds the tree a segment
// header describes.
func (w *Writer) storeMatches(t TreeState) bool {
	if w.store.Leaves() < t.Size {
		return false
	}
	f, err := merkle.FrontierAt(w.store, t.Size)
	if err != nil {
		return false
	}
	want, err := merkle.ParseFrontier(t.Size, t.Frontier)
	return err == nil && f.Root() == want.Root()
}

// relinkStart is what Relink hands to Open.
type relinkStart struct {
	seq  uint64 // the new chain's first seq
	link Link
}

// startRelinked sets up a new chain after Relink moved the old files away.
func (w *Writer) startRelinked(now time.Time) error {
	s := &w.st
	rl := w.cfg.relink
	s.seq, s.chainStart = rl.seq-1, rl.seq
	s.hash = [hashHexLen]byte([]byte(ZeroHash))
	s.tree = merkle.Frontier{}
	s.switchReason = ReasonRelink
	s.events = append(s.events, Event{Kind: EventStarted, Detail: "writer opened a relinked chain", Time: now.UTC()})
	if w.store != nil {
		if err := w.store.Truncate(0); err != nil {
			return fmt.Errorf("audit chain: relink: Merkle store: %w", err)
		}
	}
	w.noteCheckpoint(Checkpoint{}, rl.seq)
	return nil
}

// Relink starts a new chain in place of one Open refused. It is the
// operator's acknowledged decision, never automatic: every file of the old
// log (segments, torn and foreign files, the Merkle store) is moved,
// untouched, into a new folder next to it (<base>.broken-<UTC time>), and
// a new chain starts at seq K+1, K being the highest seq the old files or
// the trusted checkpoints reached, so that (node, seq) stays unique in
// every stream. Its first line is a segment header with reason "relink"
// whose Link records link.Previous (the last trusted checkpoint), the
// failure, the folder and the operator's reason; link.MovedTo is filled
// in here. The new writer is returned open.
func Relink(cfg Config, link Link) (*Writer, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	// A checkpoint at seq S was itself written as line S+1.
	top := link.Previous.Seq + 1
	for _, cp := range cfg.TrustedCheckpoints {
		if cp.NodeID == cfg.NodeID {
			top = max(top, cp.Seq+1)
		}
	}
	top = max(top, highestSeq(cfg.Path))
	dir, base := filepath.Split(cfg.Path)
	if dir == "" {
		dir = "."
	}
	moved := base + ".broken-" + time.Now().UTC().Format("20060102T150405.000000000Z")
	if err := moveLog(cfg.Path, cfg.MerkleDir, filepath.Join(dir, moved)); err != nil {
		return nil, fmt.Errorf("audit chain: relink: %w", err)
	}
	link.MovedTo = moved
	cfg.TrustedCheckpoints = nil
	cfg.relink = &relinkStart{seq: top + 1, link: link}
	return Open(cfg)
}

// highestSeq is the highest seq found at the end of any segment of the
// log at path, intact or not (best effort; 0 when none parses).
func highestSeq(path string) uint64 {
	files, err := listSegmentFiles(path)
	if err != nil {
		return 0
	}
	var top uint64
	for _, sf := range files {
		if sf.vanished {
			continue
		}
		rc, err := openSegment(sf.path)
		if err != nil {
			continue
		}
		tail := &tailKeeper{max: 1 << 20}
		_, _ = io.Copy(tail, rc)
		rc.Close()
		for _, line := range strings.Split(string(tail.buf), "\n") {
			if f, err := parseChain([]byte(line)); err == nil {
				top = max(top, f.Seq)
			}
		}
	}
	return top
}

// moveLog moves every file belonging to the log at path, and the Merkle
// store folder, into the new folder dst.
func moveLog(path, merkleDir, dst string) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	if err := os.Mkdir(dst, 0o700); err != nil {
		return err
	}
	ext := filepath.Ext(base)
	prefix := base[:len(base)-len(ext)] + "-"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		name := e.Name()
		ours := name == base || strings.HasPrefix(name, base+".torn-") || strings.HasPrefix(name, base+".foreign-") ||
			strings.HasPrefix(name, base+".salvage-") ||
			isBackupName(name, prefix, ext) || strings.HasSuffix(name, ".gz") && isBackupName(strings.TrimSuffix(name, ".gz"), prefix, ext)
		if !ours {
			continue
		}
		if err := os.Rename(filepath.Join(dir, name), filepath.Join(dst, name)); err != nil {
			return err
		}
	}
	if _, err := os.Stat(merkleDir); err == nil {
		if err := os.Rename(merkleDir, filepath.Join(dst, filepath.Base(merkleDir))); err != nil {
			return err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := syncDir(dst); err != nil {
		return err
	}
	return syncDir(dir)
}
