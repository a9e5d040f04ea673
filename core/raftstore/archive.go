package raftstore

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	"github.com/vigilsec/vigil/core"
)

// User-facing snapshot archive (Vault's sys/storage/raft/snapshot): a gzip'd
// tar holding, in this order,
//
//	state.db    a consistent copy of the bbolt state file
//	meta.json   archiveMeta
//	SHA256SUMS  "<hex>  state.db" and "<hex>  meta.json" lines (sha256sum format)
//	SHA256SUMS.sealed  SHA256SUMS authenticated by the cluster (SnapshotSealer);
//	            Vault's clients require this last entry to be present and non-empty
const archiveFormat = 1

const (
	entryState  = "state.db"
	entryMeta   = "meta.json"
	entrySums   = "SHA256SUMS"
	entrySealed = "SHA256SUMS.sealed"
	maxSmall    = 1 << 20 // limit for meta.json and SHA256SUMS
)

// archiveMeta is meta.json.
type archiveMeta struct {
	FormatVersion int       `json:"format_version"`
	NodeID        string    `json:"node_id"`
	Index         uint64    `json:"index"`
	Term          uint64    `json:"term"`
	Created       time.Time `json:"created"`
	StateSize     int64     `json:"state_size"`
	StateSHA256   string    `json:"state_sha256"`
	// Attachments is what SaveOptions.Inspect returned (absent when none).
	Attachments json.RawMessage `json:"attachments,omitempty"`
}

// SaveSnapshot writes a self-verifying archive of this node's applied state
// to w: a consistent point-in-time copy taken in one read transaction, so
// writes may continue meanwhile. On a follower the copy may trail the
// leader; call it on the leader (after Barrier) for the latest state. It
// returns ctx.Err() if ctx ends first.
func (s *Store) SaveSnapshot(ctx context.Context, w io.Writer) error {
	_, err := s.SaveSnapshotWith(ctx, w, SaveOptions{})
	return err
}

// SaveSnapshotWith is SaveSnapshot with options; it returns what meta.json
// says of the archive it wrote.
func (s *Store) SaveSnapshotWith(ctx context.Context, w io.Writer, opts SaveOptions) (*core.SnapshotArchiveInfo, error) {
	tx, err := s.fsm.beginRead()
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	index, term := readApplied(tx)
	now := s.cfg.Now().UTC()
	var attach json.RawMessage
	if opts.Inspect != nil {
		if attach, err = opts.Inspect(ctx, &View{tx: tx, index: index, term: term}); err != nil {
			return nil, err
		}
		if len(attach) > 0 && !json.Valid(attach) {
			return nil, core.Errorf(core.CodeInternal, "raft: save snapshot: the attachments are not JSON")
		}
	}

	gz := gzip.NewWriter(ctxWriter{ctx, w})
	tw := tar.NewWriter(gz)
	put := func(name string, size int64) error {
		return tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: size, ModTime: now, Typeflag: tar.TypeReg})
	}
	h := sha256.New()
	var sums []byte
	size := tx.Size()
	err = put(entryState, size)
	if err == nil {
		_, err = tx.WriteTo(io.MultiWriter(tw, h))
	}
	// End the read transaction before sealing: the sealer may write (to
	// create its key), and a write can wait on bbolt's mmap while a read
	// transaction is open.
	_ = tx.Rollback()
	var metaJSON []byte
	meta := archiveMeta{
		FormatVersion: archiveFormat,
		NodeID:        s.cfg.NodeID,
		Index:         index,
		Term:          term,
		Created:       now,
		StateSize:     size,
		StateSHA256:   hex.EncodeToString(h.Sum(nil)),
		Attachments:   attach,
	}
	if err == nil {
		metaJSON, err = json.MarshalIndent(meta, "", "  ")
	}
	// Each step runs only while err is nil: a failure (in particular of
	// the sealer) must reach the caller, never be replaced by the success
	// of a later write, or an archive that no restore accepts would be
	// reported as saved.
	writeEntry := func(name string, data []byte) {
		if err != nil {
			return
		}
		if err = put(name, int64(len(data))); err == nil {
			_, err = tw.Write(data)
		}
	}
	writeEntry(entryMeta, metaJSON)
	if err == nil {
		m := sha256.Sum256(metaJSON)
		sums = fmt.Appendf(nil, "%x  %s\n%x  %s\n", h.Sum(nil), entryState, m, entryMeta)
	}
	writeEntry(entrySums, sums)
	var sealed []byte
	if err == nil {
		sealed, err = s.sealSums(sums)
		if err == nil && len(sealed) == 0 {
			err = errors.New("the snapshot sealer returned nothing")
		}
		if err != nil {
			err = fmt.Errorf("seal %s: %w", entrySums, err)
		}
	}
	writeEntry(entrySealed, sealed)
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = gz.Close()
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, core.Errorf(core.CodeInternal, "raft: save snapshot: %w", err)
	}
	return meta.info(), nil
}

// RestoreSnapshot replaces the whole cluster's state with an archive written
// by SaveSnapshot. Leader only. The archive is read completely into a
// temporary file and verified first (gzip and tar framing, SHA256SUMS,
// format version, meta.json against the state, and a full bbolt consistency
// check); any failure returns a CodeInvalid error and leaves the current
// state untouched. Only then is the state handed to raft.Restore, which
// installs it through the FSM on this node and by snapshot on the others,
// and returns once a quorum has it. Writes in flight are aborted. ctx is
// honoured while reading and verifying, not during the cluster-wide install.
func (s *Store) RestoreSnapshot(ctx context.Context, r io.Reader) error {
	return s.RestoreSnapshotForce(ctx, r, false)
}

// RestoreSnapshotForce is RestoreSnapshot; with force the archive's
// SHA256SUMS.sealed is not checked against this cluster's SnapshotSealer
// (Vault's snapshot-force: restoring a snapshot taken by another cluster).
func (s *Store) RestoreSnapshotForce(ctx context.Context, r io.Reader, force bool) error {
	if !s.IsLeader() {
		return s.notLeader()
	}
	path, _, sealed, err := readArchive(ctx, r, s.cfg.Dir)
	if err != nil {
		return err
	}
	if !force {
		if err := s.verifySealed(sealed); err != nil {
			_ = os.Remove(path)
			return err
		}
	}
	defer os.Remove(path)
	f, err := os.Open(path)
	if err != nil {
		return core.Errorf(core.CodeInternal, "raft: restore snapshot: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return core.Errorf(core.CodeInternal, "raft: restore snapshot: %w", err)
	}
	// Index 0: raft gives the snapshot the index after its own log, and the
	// FSM stamps that index into the state, so the archive's (foreign, and
	// caller-controlled) index never steers this cluster's log.
	meta := &raft.SnapshotMeta{
		Version: raft.SnapshotVersionMax,
		Size:    int64(len(fsmSnapshotMagic)) + st.Size(),
	}
	stream := io.MultiReader(bytes.NewReader(fsmSnapshotMagic), bufio.NewReader(f))
	if err := s.raft.Restore(meta, stream, s.cfg.ApplyTimeout); err != nil {
		return s.raftErr("restore snapshot", err)
	}
	return nil
}

func rejected(format string, args ...any) error {
	return core.Invalid("raft: snapshot rejected: "+format, args...)
}

// readArchive reads and verifies an archive, leaving state.db in a temporary
// file in dir whose path it returns (the caller removes it).
func readArchive(ctx context.Context, r io.Reader, dir string) (path string, meta *archiveMeta, sealed *sealedSums, err error) {
	gz, err := gzip.NewReader(ctxReader{ctx, r})
	if err != nil {
		return "", nil, nil, inputErr(ctx, err, "not a gzip archive")
	}
	tmp, err := os.CreateTemp(dir, "snapshot-upload-*.db")
	if err != nil {
		return "", nil, nil, core.Errorf(core.CodeInternal, "raft: restore snapshot: %w", err)
	}
	defer func() {
		_ = tmp.Close()
		if err != nil {
			_ = os.Remove(tmp.Name())
		}
	}()

	tr := tar.NewReader(gz)
	small := map[string][]byte{}
	var stateSum []byte
	var stateSize int64
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", nil, nil, inputErr(ctx, err, "corrupt archive")
		}
		if h.Typeflag != tar.TypeReg {
			return "", nil, nil, rejected("unexpected entry %q of type %q", h.Name, h.Typeflag)
		}
		_, dupSmall := small[h.Name]
		if dupSmall || (h.Name == entryState && stateSum != nil) {
			return "", nil, nil, rejected("duplicate entry %q", h.Name)
		}
		switch h.Name {
		case entryState:
			hash := sha256.New()
			src := &trackReader{r: tr}
			stateSize, err = io.Copy(io.MultiWriter(tmp, hash), src)
			if src.err != nil {
				return "", nil, nil, inputErr(ctx, src.err, "corrupt archive")
			}
			if err != nil {
				return "", nil, nil, core.Errorf(core.CodeInternal, "raft: restore snapshot: %w", err)
			}
			stateSum = hash.Sum(nil)
		case entryMeta, entrySums, entrySealed:
			b, err := io.ReadAll(io.LimitReader(tr, maxSmall+1))
			if err != nil {
				return "", nil, nil, inputErr(ctx, err, "corrupt archive")
			}
			if len(b) > maxSmall {
				return "", nil, nil, rejected("%s is larger than %d bytes", h.Name, maxSmall)
			}
			small[h.Name] = b
		default:
			return "", nil, nil, rejected("unexpected entry %q", h.Name)
		}
	}
	// Read to the end so gzip checks its CRC-32 and length trailer.
	if _, err := io.Copy(io.Discard, gz); err != nil {
		return "", nil, nil, inputErr(ctx, err, "corrupt archive")
	}
	if err := tmp.Sync(); err != nil {
		return "", nil, nil, core.Errorf(core.CodeInternal, "raft: restore snapshot: %w", err)
	}
	if stateSum == nil || small[entryMeta] == nil || small[entrySums] == nil {
		return "", nil, nil, rejected("archive must contain %s, %s and %s", entryState, entryMeta, entrySums)
	}
	meta, err = verifyArchive(stateSum, stateSize, small[entryMeta], small[entrySums])
	if err != nil {
		return "", nil, nil, err
	}
	index, term, err := validateState(tmp.Name())
	if err != nil {
		return "", nil, nil, rejected("%s: %v", entryState, err)
	}
	if index != meta.Index || term != meta.Term {
		return "", nil, nil, rejected("%s is at index %d term %d, meta.json says %d/%d", entryState, index, term, meta.Index, meta.Term)
	}
	return tmp.Name(), meta, &sealedSums{sums: small[entrySums], sealed: small[entrySealed]}, nil
}

// verifyArchive checks SHA256SUMS against both files and meta.json against
// the state.
func verifyArchive(stateSum []byte, stateSize int64, metaJSON, sums []byte) (*archiveMeta, error) {
	want := map[string]string{}
	for _, line := range strings.Split(strings.TrimSuffix(string(sums), "\n"), "\n") {
		sum, name, ok := strings.Cut(line, "  ")
		if !ok || len(sum) != 64 || want[name] != "" {
			return nil, rejected("malformed %s line %q", entrySums, line)
		}
		want[name] = sum
	}
	metaSum := sha256.Sum256(metaJSON)
	got := map[string]string{entryState: hex.EncodeToString(stateSum), entryMeta: hex.EncodeToString(metaSum[:])}
	if len(want) != len(got) {
		return nil, rejected("%s must list exactly %s and %s", entrySums, entryState, entryMeta)
	}
	for name, sum := range got {
		if want[name] != sum {
			return nil, rejected("checksum mismatch for %s", name)
		}
	}
	var meta archiveMeta
	if err := json.Unmarshal(metaJSON, &meta); err != nil {
		return nil, rejected("%s: %v", entryMeta, err)
	}
	if meta.FormatVersion != archiveFormat {
		return nil, rejected("unsupported format version %d (this server reads %d)", meta.FormatVersion, archiveFormat)
	}
	if meta.StateSHA256 != got[entryState] || meta.StateSize != stateSize {
		return nil, rejected("%s does not describe %s", entryMeta, entryState)
	}
	return &meta, nil
}

// inputErr reports a read failure of the uploaded archive: ctx's error if it
// ended, a CodeInvalid rejection otherwise.
func inputErr(ctx context.Context, err error, what string) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return rejected("%s: %v", what, err)
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// trackReader remembers the first non-EOF read error, to tell a corrupt
// upload apart from a failing local disk in io.Copy.
type trackReader struct {
	r   io.Reader
	err error
}

func (t *trackReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && err != io.EOF && t.err == nil {
		t.err = err
	}
	return n, err
}
