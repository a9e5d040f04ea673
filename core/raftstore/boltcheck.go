package raftstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// checkBoltFile verifies the structure of an untrusted bbolt file (format
// version 2) with plain, bounds-checked reads, before bbolt itself touches
// it. bbolt trusts its file: on a corrupt one it can index out of range,
// fault on the mmap, or panic in a goroutine while rebuilding the free list
// (with NoFreelistSync), any of which would take the server down — on every
// node, for a snapshot replicated by raft. The checks mirror what bbolt's
// own consistency check (tx.Check) and free-list rebuild require:
//
//   - both meta pages valid (magic, version, checksum) with one page size,
//     root and free-list pages below the high-water mark, file long enough;
//   - every reachable page has its own id, a branch or leaf type, lies below
//     the high-water mark (overflow included) and is referenced only once;
//   - every element, key and value lies inside its page;
//   - keys are strictly increasing and within the parent's key range;
//   - nested bucket values are well formed, inline pages included;
//   - a synced free list holds valid, unreachable, distinct page ids.
//
// Files written by tx.WriteTo (snapshots) always have both meta pages valid,
// so requiring that is no loss.
func checkBoltFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	return checkBolt(f, st.Size())
}

// checkBolt is checkBoltFile on any reader of size bytes.
func checkBolt(r io.ReaderAt, size int64) error {
	c := &boltChecker{r: r, size: size, seen: map[uint64]bool{}}
	return c.check()
}

const (
	boltMagic        = 0xED0CDAED
	boltVersion      = 2
	pageHeaderSize   = 16
	elemSize         = 16 // branch and leaf elements alike
	bucketHeaderSize = 16
	metaSize         = 64
	flagBranch       = 0x01
	flagLeaf         = 0x02
	flagMeta         = 0x04
	flagFreelist     = 0x10
	noFreelist       = ^uint64(0)
	maxDepth         = 64
)

var ne = binary.NativeEndian // bbolt stores structs in native byte order

type boltChecker struct {
	r    io.ReaderAt
	size int64
	ps   uint64 // page size
	hwm  uint64 // high-water mark: pages [0, hwm) exist
	seen map[uint64]bool
}

type boltMeta struct {
	pageSize, root, freelist, hwm, txid uint64
}

func (c *boltChecker) check() error {
	m0, err := c.readMeta(0, 0)
	if err != nil {
		return fmt.Errorf("meta page 0: %w", err)
	}
	c.ps = m0.pageSize
	m1, err := c.readMeta(1, int64(c.ps))
	if err != nil {
		return fmt.Errorf("meta page 1: %w", err)
	}
	if m1.pageSize != m0.pageSize {
		return errors.New("meta pages disagree on the page size")
	}
	m := m0 // bbolt uses the valid meta with the higher txid
	if m1.txid > m0.txid {
		m = m1
	}
	c.hwm = m.hwm
	switch {
	case m.hwm < 3 || m.hwm > uint64(c.size)/c.ps:
		return fmt.Errorf("high-water mark %d pages does not fit a %d byte file", m.hwm, c.size)
	case m.root < 2 || m.root >= m.hwm:
		return fmt.Errorf("root page %d out of range", m.root)
	}
	c.seen[0], c.seen[1] = true, true
	if _, err := c.tree(m.root, nil, nil, 0, true); err != nil {
		return err
	}
	if m.freelist != noFreelist {
		return c.freelist(m.freelist)
	}
	return nil
}

func (c *boltChecker) readMeta(id uint64, off int64) (boltMeta, error) {
	var b [pageHeaderSize + metaSize]byte
	if _, err := c.r.ReadAt(b[:], off); err != nil {
		return boltMeta{}, err
	}
	if ne.Uint64(b[0:]) != id || ne.Uint16(b[8:]) != flagMeta {
		return boltMeta{}, errors.New("bad page header")
	}
	mb := b[pageHeaderSize:]
	h := fnv.New64a()
	h.Write(mb[:56])
	m := boltMeta{
		pageSize: uint64(ne.Uint32(mb[8:])),
		root:     ne.Uint64(mb[16:]),
		freelist: ne.Uint64(mb[32:]),
		hwm:      ne.Uint64(mb[40:]),
		txid:     ne.Uint64(mb[48:]),
	}
	switch {
	case ne.Uint32(mb[0:]) != boltMagic:
		return m, errors.New("not a bbolt file")
	case ne.Uint32(mb[4:]) != boltVersion:
		return m, fmt.Errorf("unsupported bbolt version %d", ne.Uint32(mb[4:]))
	case ne.Uint64(mb[56:]) != h.Sum64():
		return m, errors.New("checksum mismatch")
	case m.pageSize < 512 || m.pageSize > 1<<16 || m.pageSize&(m.pageSize-1) != 0:
		return m, fmt.Errorf("invalid page size %d", m.pageSize)
	}
	return m, nil
}

// page reads page id with its overflow pages, claiming them as referenced.
func (c *boltChecker) page(id uint64, want uint16) ([]byte, error) {
	if id < 2 || id >= c.hwm {
		return nil, fmt.Errorf("page %d out of range", id)
	}
	var hdr [pageHeaderSize]byte
	if _, err := c.r.ReadAt(hdr[:], int64(id*c.ps)); err != nil {
		return nil, fmt.Errorf("page %d: %w", id, err)
	}
	flags, overflow := ne.Uint16(hdr[8:]), uint64(ne.Uint32(hdr[12:]))
	switch {
	case ne.Uint64(hdr[0:]) != id:
		return nil, fmt.Errorf("page %d: header says page %d", id, ne.Uint64(hdr[0:]))
	case flags&want == 0 || (flags != flagBranch && flags != flagLeaf && flags != flagFreelist):
		return nil, fmt.Errorf("page %d: unexpected page type %#x", id, flags)
	case overflow >= c.hwm-id:
		return nil, fmt.Errorf("page %d: overflow %d past the high-water mark", id, overflow)
	}
	for i := id; i <= id+overflow; i++ {
		if c.seen[i] {
			return nil, fmt.Errorf("page %d: referenced twice", i)
		}
		c.seen[i] = true
	}
	buf := make([]byte, (overflow+1)*c.ps)
	if _, err := c.r.ReadAt(buf, int64(id*c.ps)); err != nil {
		return nil, fmt.Errorf("page %d: %w", id, err)
	}
	return buf, nil
}

// tree checks the b-tree rooted at page id: keys in [lo, hi) (nil = open);
// in the root tree (top) every value must be a bucket. It returns the
// largest key found.
func (c *boltChecker) tree(id uint64, lo, hi []byte, depth int, top bool) ([]byte, error) {
	if depth > maxDepth {
		return nil, errors.New("tree too deep")
	}
	p, err := c.page(id, flagBranch|flagLeaf)
	if err != nil {
		return nil, err
	}
	if ne.Uint16(p[8:]) == flagLeaf {
		return c.leaf(p, lo, hi, depth, top)
	}
	n := int(ne.Uint16(p[10:]))
	if n == 0 {
		return nil, fmt.Errorf("page %d: empty branch", id)
	}
	keys := make([][]byte, n)
	children := make([]uint64, n)
	for i := range n {
		e := pageHeaderSize + i*elemSize
		if e+elemSize > len(p) {
			return nil, fmt.Errorf("page %d: element %d outside the page", id, i)
		}
		k, err := slice(p, e, ne.Uint32(p[e:]), uint64(ne.Uint32(p[e+4:])))
		if err != nil {
			return nil, fmt.Errorf("page %d: key %d: %w", id, i, err)
		}
		keys[i], children[i] = k, ne.Uint64(p[e+8:])
	}
	minKey := lo
	var last []byte
	for i := range n {
		if err := order(minKey, keys[i], hi, i); err != nil {
			return nil, fmt.Errorf("page %d: %w", id, err)
		}
		next := hi
		if i+1 < n {
			next = keys[i+1]
		}
		if last, err = c.tree(children[i], keys[i], next, depth+1, top); err != nil {
			return nil, err
		}
		minKey = last
	}
	return last, nil
}

// leaf checks a leaf page (or an inline bucket page) and the buckets nested
// in it.
func (c *boltChecker) leaf(p []byte, lo, hi []byte, depth int, top bool) ([]byte, error) {
	n := int(ne.Uint16(p[10:]))
	prev := lo
	for i := range n {
		e := pageHeaderSize + i*elemSize
		if e+elemSize > len(p) {
			return nil, fmt.Errorf("leaf element %d outside the page", i)
		}
		flags, pos := ne.Uint32(p[e:]), ne.Uint32(p[e+4:])
		ksize, vsize := ne.Uint32(p[e+8:]), ne.Uint32(p[e+12:])
		kv, err := slice(p, e, pos, uint64(ksize)+uint64(vsize))
		if err != nil {
			return nil, fmt.Errorf("leaf element %d: key/value %w", i, err)
		}
		k, v := kv[:ksize], kv[ksize:]
		if err := order(prev, k, hi, i); err != nil {
			return nil, err
		}
		prev = k
		if flags&1 == 0 {
			if top {
				return nil, fmt.Errorf("top-level key %q is not a bucket", k)
			}
			continue
		}
		if err := c.bucket(v, depth+1); err != nil {
			return nil, fmt.Errorf("bucket %q: %w", k, err)
		}
	}
	return prev, nil
}

// bucket checks a nested bucket value: a root page id, or an inline page.
func (c *boltChecker) bucket(v []byte, depth int) error {
	if len(v) < bucketHeaderSize {
		return errors.New("short bucket header")
	}
	root := ne.Uint64(v)
	if root != 0 {
		_, err := c.tree(root, nil, nil, depth, false)
		return err
	}
	inline := v[bucketHeaderSize:]
	if len(inline) < pageHeaderSize || ne.Uint16(inline[8:]) != flagLeaf {
		return errors.New("malformed inline bucket")
	}
	if depth > maxDepth {
		return errors.New("buckets nested too deep")
	}
	_, err := c.leaf(inline, nil, nil, depth, false)
	return err
}

func (c *boltChecker) freelist(id uint64) error {
	p, err := c.page(id, flagFreelist)
	if err != nil {
		return err
	}
	if ne.Uint16(p[8:]) != flagFreelist {
		return fmt.Errorf("free list page %d has the wrong type", id)
	}
	start, count := uint64(pageHeaderSize), uint64(ne.Uint16(p[10:]))
	if count == 0xFFFF {
		count, start = ne.Uint64(p[pageHeaderSize:]), start+8
	}
	if count > (uint64(len(p))-start)/8 {
		return fmt.Errorf("free list claims %d pages", count)
	}
	for i := range count {
		free := ne.Uint64(p[start+8*i:])
		if free < 2 || free >= c.hwm || c.seen[free] {
			return fmt.Errorf("free list lists page %d, which is invalid or in use", free)
		}
		c.seen[free] = true
	}
	return nil
}

// slice returns p[base+pos : base+pos+size], or an error when out of range.
func slice(p []byte, base int, pos uint32, size uint64) ([]byte, error) {
	start := uint64(base) + uint64(pos)
	end := start + size
	if end > uint64(len(p)) {
		return nil, errors.New("outside the page")
	}
	return p[start:end], nil
}

// order checks prev < k < hi for element i (for i == 0, prev <= k: a
// child's first key may equal its branch key).
func order(prev, k, hi []byte, i int) error {
	if prev != nil {
		if cmp := bytes.Compare(prev, k); cmp > 0 || (cmp == 0 && i > 0) {
			return fmt.Errorf("key %d out of order", i)
		}
	}
	if hi != nil && bytes.Compare(k, hi) >= 0 {
		return fmt.Errorf("key %d beyond its parent's range", i)
	}
	return nil
}
