// Package merkle is the Merkle tree of RFC 9162 (Certificate Transparency
// v2, section 2.1; the same tree as RFC 6962) that Vigil's audit
// checkpoints sign: leaf and interior hashes with the 0x00 / 0x01 domain
// prefixes, the split at the largest power of two smaller than the size,
// inclusion and consistency proofs, and their verification.
//
// The package is small and dependency-free on purpose: an auditor's
// verifier, the chain writer and the proof server all use the same few
// functions, and its tests check them against the published RFC 6962 test
// vectors and against golang.org/x/mod/sumdb/tlog as an independent
// implementation.
//
// Node addressing: the perfect subtree at (level L, index i) covers the
// leaves [i·2^L, (i+1)·2^L). Level 0 holds the leaf hashes. A tree of size n
// is described by its Frontier (the perfect subtrees of the binary
// decomposition of n, largest first); proofs read perfect subtrees from a
// NodeReader.
package merkle

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/bits"
)

// Hash is a SHA-256 value.
type Hash [sha256.Size]byte

// String returns the lowercase hex form.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// ParseHash parses 64 hex digits (lowercase or uppercase).
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 2*len(h) {
		return h, fmt.Errorf("merkle: hash %q: want %d hex digits", s, 2*len(h))
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("merkle: hash %q: %v", s, err)
	}
	return h, nil
}

// EmptyRoot is the root of the empty tree: SHA-256 of no bytes.
var EmptyRoot = Hash(sha256.Sum256(nil))

// LeafHash returns SHA-256(0x00 || data), the hash of one leaf.
func LeafHash(data []byte) Hash {
	var b [1 + 64]byte
	if len(data) <= 64 { // the chain's leaves are 32 bytes: no allocation
		b[0] = 0
		n := copy(b[1:], data)
		return sha256.Sum256(b[:1+n])
	}
	h := sha256.New()
	h.Write([]byte{0})
	h.Write(data)
	var out Hash
	h.Sum(out[:0])
	return out
}

// NodeHash returns SHA-256(0x01 || left || right), an interior node.
func NodeHash(left, right Hash) Hash {
	var b [1 + 2*sha256.Size]byte
	b[0] = 1
	copy(b[1:], left[:])
	copy(b[1+sha256.Size:], right[:])
	return sha256.Sum256(b[:])
}

// split returns the largest power of two strictly smaller than n (n >= 2):
// RFC 9162's k.
func split(n uint64) uint64 {
	return 1 << (bits.Len64(n-1) - 1)
}

// Errors returned by proof generation and verification.
var (
	// ErrRange: an index or size outside what the tree holds.
	ErrRange = errors.New("merkle: index or size out of range")
	// ErrProof: the proof does not prove the claim.
	ErrProof = errors.New("merkle: proof does not verify")
)

// Frontier is the compact state of a tree of Size leaves: the hashes of
// the perfect subtrees of Size's binary decomposition, largest (leftmost)
// first. It is enough to append leaves and to compute the root. The zero
// value is the empty tree.
type Frontier struct {
	Size  uint64
	Nodes []Hash
}

// Clone returns an independent copy.
func (f Frontier) Clone() Frontier {
	return Frontier{Size: f.Size, Nodes: append([]Hash(nil), f.Nodes...)}
}

// Append adds one leaf hash. complete, if not nil, is called for every
// perfect subtree the leaf completes, from the leaf itself (level 0) up:
// with level, index and hash, exactly the nodes a NodeStore keeps.
func (f *Frontier) Append(leaf Hash, complete func(level uint8, index uint64, h Hash)) {
	h := leaf
	idx := f.Size
	if complete != nil {
		complete(0, idx, h)
	}
	// Each trailing one bit of the old size is a subtree of equal height
	// that the new one merges with.
	level := uint8(0)
	for n := f.Size; n&1 == 1; n >>= 1 {
		last := len(f.Nodes) - 1
		h = NodeHash(f.Nodes[last], h)
		f.Nodes = f.Nodes[:last]
		level++
		idx >>= 1
		if complete != nil {
			complete(level, idx, h)
		}
	}
	f.Nodes = append(f.Nodes, h)
	f.Size++
}

// Root returns the tree's root hash (EmptyRoot for size 0).
func (f Frontier) Root() Hash {
	if len(f.Nodes) == 0 {
		return EmptyRoot
	}
	h := f.Nodes[len(f.Nodes)-1]
	for i := len(f.Nodes) - 2; i >= 0; i-- {
		h = NodeHash(f.Nodes[i], h)
	}
	return h
}

// Valid reports whether the number of nodes matches the size.
func (f Frontier) Valid() bool { return len(f.Nodes) == bits.OnesCount64(f.Size) }

// Hex returns the nodes as hex strings (the form segment headers carry).
func (f Frontier) Hex() []string {
	out := make([]string, len(f.Nodes))
	for i, n := range f.Nodes {
		out[i] = n.String()
	}
	return out
}

// ParseFrontier builds a frontier of size from hex node hashes.
func ParseFrontier(size uint64, nodes []string) (Frontier, error) {
	f := Frontier{Size: size, Nodes: make([]Hash, len(nodes))}
	for i, s := range nodes {
		h, err := ParseHash(s)
		if err != nil {
			return Frontier{}, err
		}
		f.Nodes[i] = h
	}
	if !f.Valid() {
		return Frontier{}, fmt.Errorf("merkle: a tree of size %d has %d frontier nodes, not %d", size, bits.OnesCount64(size), len(nodes))
	}
	return f, nil
}

// NodeReader returns stored perfect subtrees: Node(level, index) is the
// hash of leaves [index·2^level, (index+1)·2^level). It returns an error
// wrapping ErrRange for a node it does not hold.
type NodeReader interface {
	Node(level uint8, index uint64) (Hash, error)
}

// subtree returns MTH(D[a:b]) for a range that the RFC's recursion
// produces (a is a multiple of the largest power of two not above b-a).
func subtree(r NodeReader, a, b uint64) (Hash, error) {
	n := b - a
	if n&(n-1) == 0 && a%n == 0 {
		return r.Node(uint8(bits.TrailingZeros64(n)), a/n)
	}
	k := split(n)
	l, err := subtree(r, a, a+k)
	if err != nil {
		return Hash{}, err
	}
	rh, err := subtree(r, a+k, b)
	if err != nil {
		return Hash{}, err
	}
	return NodeHash(l, rh), nil
}

// RootAt returns the root of the first size leaves.
func RootAt(r NodeReader, size uint64) (Hash, error) {
	if size == 0 {
		return EmptyRoot, nil
	}
	return subtree(r, 0, size)
}

// FrontierAt returns the frontier of the first size leaves.
func FrontierAt(r NodeReader, size uint64) (Frontier, error) {
	f := Frontier{Size: size}
	var start uint64
	for l := 63; l >= 0; l-- {
		if size&(1<<l) == 0 {
			continue
		}
		h, err := r.Node(uint8(l), start>>l)
		if err != nil {
			return Frontier{}, err
		}
		f.Nodes = append(f.Nodes, h)
		start += 1 << l
	}
	return f, nil
}

// InclusionProof returns the audit path of leaf index in the tree of size
// leaves (RFC 9162 section 2.1.3.1), leaf-side first.
func InclusionProof(r NodeReader, index, size uint64) ([]Hash, error) {
	if index >= size {
		return nil, fmt.Errorf("%w: leaf %d in a tree of size %d", ErrRange, index, size)
	}
	var path []Hash
	var walk func(m, a, b uint64) error
	walk = func(m, a, b uint64) error {
		if b-a <= 1 {
			return nil
		}
		k := split(b - a)
		var sib Hash
		var err error
		if m < k {
			if err = walk(m, a, a+k); err != nil {
				return err
			}
			sib, err = subtree(r, a+k, b)
		} else {
			if err = walk(m-k, a+k, b); err != nil {
				return err
			}
			sib, err = subtree(r, a, a+k)
		}
		if err != nil {
			return err
		}
		path = append(path, sib)
		return nil
	}
	if err := walk(index, 0, size); err != nil {
		return nil, err
	}
	return path, nil
}

// ConsistencyProof proves that the tree of size m is a prefix of the tree
// of size n (RFC 9162 section 2.1.4.1). It is empty when m == n or m == 0.
func ConsistencyProof(r NodeReader, m, n uint64) ([]Hash, error) {
	if m > n {
		return nil, fmt.Errorf("%w: consistency from size %d to the smaller size %d", ErrRange, m, n)
	}
	if m == 0 || m == n {
		return nil, nil
	}
	var path []Hash
	var sub func(m, a, b uint64, whole bool) error
	sub = func(m, a, b uint64, whole bool) error {
		if m == b-a {
			if whole {
				return nil
			}
			h, err := subtree(r, a, b)
			if err != nil {
				return err
			}
			path = append(path, h)
			return nil
		}
		k := split(b - a)
		var sib Hash
		var err error
		if m <= k {
			if err = sub(m, a, a+k, whole); err != nil {
				return err
			}
			sib, err = subtree(r, a+k, b)
		} else {
			if err = sub(m-k, a+k, b, false); err != nil {
				return err
			}
			sib, err = subtree(r, a, a+k)
		}
		if err != nil {
			return err
		}
		path = append(path, sib)
		return nil
	}
	if err := sub(m, 0, n, true); err != nil {
		return nil, err
	}
	return path, nil
}

// VerifyInclusion checks that leaf is leaf number index of the tree of
// size leaves whose root is root, using proof (RFC 9162 section 2.1.3.2).
// It returns nil or an error wrapping ErrProof.
func VerifyInclusion(index, size uint64, leaf Hash, proof []Hash, root Hash) error {
	if index >= size {
		return fmt.Errorf("%w: leaf index %d is not below the tree size %d", ErrProof, index, size)
	}
	fn, sn := index, size-1
	r := leaf
	for _, p := range proof {
		if sn == 0 {
			return fmt.Errorf("%w: the path is longer than the tree is deep", ErrProof)
		}
		if fn&1 == 1 || fn == sn {
			r = NodeHash(p, r)
			if fn&1 == 0 {
				for fn&1 == 0 && fn != 0 {
					fn >>= 1
					sn >>= 1
				}
			}
		} else {
			r = NodeHash(r, p)
		}
		fn >>= 1
		sn >>= 1
	}
	if sn != 0 {
		return fmt.Errorf("%w: the path is shorter than the tree is deep", ErrProof)
	}
	if r != root {
		return fmt.Errorf("%w: the path leads to root %s, not %s", ErrProof, r, root)
	}
	return nil
}

// VerifyConsistency checks that the tree of size1 leaves with root1 is a
// prefix of the tree of size2 leaves with root2 (RFC 9162 section
// 2.1.4.2). A tree is consistent with itself (empty proof, same root), and
// the empty tree with every tree (empty proof). It returns nil or an error
// wrapping ErrProof.
func VerifyConsistency(size1, size2 uint64, root1, root2 Hash, proof []Hash) error {
	switch {
	case size1 > size2:
		return fmt.Errorf("%w: the first size %d is larger than the second %d", ErrProof, size1, size2)
	case size1 == size2:
		if len(proof) != 0 {
			return fmt.Errorf("%w: a tree is consistent with itself by an empty proof", ErrProof)
		}
		if root1 != root2 {
			return fmt.Errorf("%w: two different roots for the same size %d", ErrProof, size1)
		}
		return nil
	case size1 == 0:
		if len(proof) != 0 {
			return fmt.Errorf("%w: the empty tree is consistent with any tree by an empty proof", ErrProof)
		}
		return nil
	case len(proof) == 0:
		return fmt.Errorf("%w: empty proof", ErrProof)
	}
	path := proof
	if size1&(size1-1) == 0 { // an exact power of two: the old root is the first node
		path = append([]Hash{root1}, proof...)
	}
	fn, sn := size1-1, size2-1
	for fn&1 == 1 {
		fn >>= 1
		sn >>= 1
	}
	fr, sr := path[0], path[0]
	for _, c := range path[1:] {
		if sn == 0 {
			return fmt.Errorf("%w: the path is longer than the tree is deep", ErrProof)
		}
		if fn&1 == 1 || fn == sn {
			fr = NodeHash(c, fr)
			sr = NodeHash(c, sr)
			if fn&1 == 0 {
				for fn&1 == 0 && fn != 0 {
					fn >>= 1
					sn >>= 1
				}
			}
		} else {
			sr = NodeHash(sr, c)
		}
		fn >>= 1
		sn >>= 1
	}
	if sn != 0 {
		return fmt.Errorf("%w: the path is shorter than the tree is deep", ErrProof)
	}
	if fr != root1 {
		return fmt.Errorf("%w: the path gives the first root %s, not %s", ErrProof, fr, root1)
	}
	if sr != root2 {
		return fmt.Errorf("%w: the path gives the second root %s, not %s", ErrProof, sr, root2)
	}
	return nil
}
