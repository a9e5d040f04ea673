package merkle

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/bits"
	"os"
	"path/filepath"
	"sync"
)

// Store keeps every perfect subtree of a growing tree, so that proofs cost
// O(log n) reads. Nodes are appended in the order Frontier.Append reports
// them; Leaves is the number of level-0 nodes. Implementations are safe for
// concurrent use: one appender, any number of readers.
type Store interface {
	NodeReader
	// Add queues one node (see Frontier.Append). Nodes become readable
	// after Flush.
	Add(level uint8, index uint64, h Hash)
	// Flush makes queued nodes readable (and writes them, for a file store).
	Flush() error
	// Leaves is the number of readable leaves.
	Leaves() uint64
	// Truncate drops every node beyond a tree of size leaves.
	Truncate(size uint64) error
	Close() error
}

// MemStore is a Store in memory.
type MemStore struct {
	mu      sync.RWMutex
	levels  [][]Hash
	pending []pendingNode
}

type pendingNode struct {
	level uint8
	index uint64
	h     Hash
}

var _ Store = (*MemStore)(nil)

// Add implements Store.
func (m *MemStore) Add(level uint8, index uint64, h Hash) {
	m.mu.Lock()
	m.pending = append(m.pending, pendingNode{level, index, h})
	m.mu.Unlock()
}

// Flush implements Store.
func (m *MemStore) Flush() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range m.pending {
		for int(p.level) >= len(m.levels) {
			m.levels = append(m.levels, nil)
		}
		if uint64(len(m.levels[p.level])) != p.index {
			m.pending = m.pending[:0]
			return fmt.Errorf("merkle: node (%d, %d) added out of order: level holds %d", p.level, p.index, len(m.levels[p.level]))
		}
		m.levels[p.level] = append(m.levels[p.level], p.h)
	}
	m.pending = m.pending[:0]
	return nil
}

// Node implements NodeReader.
func (m *MemStore) Node(level uint8, index uint64) (Hash, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if int(level) >= len(m.levels) || index >= uint64(len(m.levels[level])) {
		return Hash{}, fmt.Errorf("%w: node (%d, %d) is not stored", ErrRange, level, index)
	}
	return m.levels[level][index], nil
}

// Leaves implements Store.
func (m *MemStore) Leaves() uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if len(m.levels) == 0 {
		return 0
	}
	return uint64(len(m.levels[0]))
}

// Truncate implements Store.
func (m *MemStore) Truncate(size uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for l := range m.levels {
		if keep := size >> l; uint64(len(m.levels[l])) > keep {
			m.levels[l] = m.levels[l][:keep]
		}
	}
	m.pending = m.pending[:0]
	return nil
}

// Close implements Store.
func (m *MemStore) Close() error { return nil }

// FileStore is a Store in a folder: one append-only file per level
// (level-00, level-01, ...), each the concatenation of that level's 32-byte
// node hashes in index order. Nothing is fsynced: the store is derived
// from the audit log, which is the source of truth, and is checked against
// a signed root (and truncated or rebuilt) when the log is opened.
type FileStore struct {
	dir     string
	mu      sync.RWMutex
	files   []*os.File
	counts  []uint64
	pending []pendingNode
	buf     [][]byte
}

var _ Store = (*FileStore)(nil)

// OpenFileStore opens (or creates) the store in dir. Level files whose
// length is not a multiple of 32 bytes are cut back to the last whole
// node; levels are then made consistent with the leaf count (a level may
// never hold more nodes than the leaves allow).
func OpenFileStore(dir string) (*FileStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("merkle: %w", err)
	}
	s := &FileStore{dir: dir}
	for l := 0; l < 64; l++ {
		path := s.levelPath(uint8(l))
		fi, err := os.Stat(path)
		if errors.Is(err, fs.ErrNotExist) {
			break
		}
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("merkle: %w", err)
		}
		if err := s.openLevel(uint8(l)); err != nil {
			s.Close()
			return nil, err
		}
		n := uint64(fi.Size()) / uint64(len(Hash{}))
		s.counts[l] = n
	}
	if err := s.truncateLocked(s.consistentSize()); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// consistentSize is the largest tree size every level holds all the nodes
// of: after a crash an upper level may lag the leaves (or the other way
// round), and the tree is only usable up to where they agree.
func (s *FileStore) consistentSize() uint64 {
	if len(s.counts) == 0 {
		return 0
	}
	size := s.counts[0]
	for l := 1; l < 64 && size >= 1<<l; l++ {
		var have uint64
		if l < len(s.counts) {
			have = s.counts[l]
		}
		// size>>l nodes are needed at level l: size < (have+1)<<l.
		if bound := (have+1)<<l - 1; bound < size {
			size = bound
		}
	}
	return size
}

func (s *FileStore) levelPath(l uint8) string {
	return filepath.Join(s.dir, fmt.Sprintf("level-%02d", l))
}

func (s *FileStore) openLevel(l uint8) error {
	for int(l) >= len(s.files) {
		s.files = append(s.files, nil)
		s.counts = append(s.counts, 0)
		s.buf = append(s.buf, nil)
	}
	if s.files[l] != nil {
		return nil
	}
	f, err := os.OpenFile(s.levelPath(l), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("merkle: %w", err)
	}
	s.files[l] = f
	return nil
}

// Add implements Store.
func (s *FileStore) Add(level uint8, index uint64, h Hash) {
	s.mu.Lock()
	s.pending = append(s.pending, pendingNode{level, index, h})
	s.mu.Unlock()
}

// Flush writes the queued nodes, one write per level touched.
func (s *FileStore) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) == 0 {
		return nil
	}
	defer func() { s.pending = s.pending[:0] }()
	for _, p := range s.pending {
		if err := s.openLevel(p.level); err != nil {
			return err
		}
		if want := s.counts[p.level] + uint64(len(s.buf[p.level]))/32; p.index != want {
			s.clearBuf()
			return fmt.Errorf("merkle: node (%d, %d) added out of order: level holds %d", p.level, p.index, want)
		}
		s.buf[p.level] = append(s.buf[p.level], p.h[:]...)
	}
	var first error
	for l, b := range s.buf {
		if len(b) == 0 {
			continue
		}
		off := int64(s.counts[l]) * 32
		if _, err := s.files[l].WriteAt(b, off); err != nil && first == nil {
			first = fmt.Errorf("merkle: write level %d: %w", l, err)
		} else if err == nil {
			s.counts[l] += uint64(len(b)) / 32
		}
		s.buf[l] = b[:0]
	}
	return first
}

func (s *FileStore) clearBuf() {
	for l := range s.buf {
		s.buf[l] = s.buf[l][:0]
	}
}

// Node implements NodeReader with one pread.
func (s *FileStore) Node(level uint8, index uint64) (Hash, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var h Hash
	if int(level) >= len(s.counts) || index >= s.counts[level] {
		return h, fmt.Errorf("%w: node (%d, %d) is not stored", ErrRange, level, index)
	}
	if _, err := s.files[level].ReadAt(h[:], int64(index)*32); err != nil {
		if errors.Is(err, io.EOF) {
			return h, fmt.Errorf("%w: node (%d, %d): level file is short", ErrRange, level, index)
		}
		return h, fmt.Errorf("merkle: read node (%d, %d): %w", level, index, err)
	}
	return h, nil
}

// Leaves implements Store.
func (s *FileStore) Leaves() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.counts) == 0 {
		return 0
	}
	return s.counts[0]
}

// Truncate implements Store.
func (s *FileStore) Truncate(size uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending = s.pending[:0]
	s.clearBuf()
	return s.truncateLocked(size)
}

func (s *FileStore) truncateLocked(size uint64) error {
	for l := range s.counts {
		keep := uint64(0)
		if l < 64 {
			keep = size >> l
		}
		if s.counts[l] > keep || s.fileLonger(l, keep) {
			if err := s.files[l].Truncate(int64(keep) * 32); err != nil {
				return fmt.Errorf("merkle: truncate level %d: %w", l, err)
			}
			s.counts[l] = min(s.counts[l], keep)
		}
	}
	return nil
}

func (s *FileStore) fileLonger(l int, keep uint64) bool {
	fi, err := s.files[l].Stat()
	return err == nil && fi.Size() > int64(keep)*32
}

// Close implements Store.
func (s *FileStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, f := range s.files {
		if f != nil {
			errs = append(errs, f.Close())
		}
	}
	s.files = nil
	s.counts = nil
	return errors.Join(errs...)
}

// Depth returns how many levels a tree of size leaves has (0 for an empty
// tree): the length of its longest audit path plus one.
func Depth(size uint64) int {
	if size == 0 {
		return 0
	}
	return bits.Len64(size-1) + 1
}
