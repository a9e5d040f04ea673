package merkle

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// The RFC 6962 reference tree (the same tree as RFC 9162): eight leaves and
// the hash of every complete subtree, as published with the Certificate
// Transparency code (transparency-dev/merkle, testonly/constants.go) and
// used by other CT implementations. Used here as data only.
var referenceLeaves = []string{"", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"}

// referenceNodes[level][index].
var referenceNodes = [][]string{{
	"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
	"0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
	"07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
	"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
	"4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
	"b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
	"46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
}, {
	"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
	"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
	"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
	"ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
}, {
	"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
	"6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
}, {
	"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}}

// referenceRoots[n] is the root of the first n leaves.
var referenceRoots = []string{
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
	"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
	"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
	"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
	"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
	"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
	"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}

func mustHash(t testing.TB, s string) Hash {
	t.Helper()
	h, err := ParseHash(s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func hexes(t testing.TB, ss ...string) []Hash {
	out := make([]Hash, len(ss))
	for i, s := range ss {
		out[i] = mustHash(t, s)
	}
	return out
}

// MustTree builds a MemStore with n leaves LeafHash(i as 8 bytes) and returns
// it with its frontier.
func MustTree(tb testing.TB, leaves []Hash) (*MemStore, Frontier) {
	tb.Helper()
	st := &MemStore{}
	var f Frontier
	for _, l := range leaves {
		f.Append(l, st.Add)
	}
	if err := st.Flush(); err != nil {
		tb.Fatal(err)
	}
	return st, f
}

func referenceTree(t *testing.T) (*MemStore, []Hash) {
	var leaves []Hash
	for _, l := range referenceLeaves {
		b, _ := hex.DecodeString(l)
		leaves = append(leaves, LeafHash(b))
	}
	st, _ := MustTree(t, leaves)
	return st, leaves
}

func TestReferenceRootsAndNodes(t *testing.T) {
	st, leaves := referenceTree(t)
	var f Frontier
	for n := 0; n <= len(leaves); n++ {
		if n > 0 {
			f.Append(leaves[n-1], nil)
		}
		if got := f.Root().String(); got != referenceRoots[n] {
			t.Errorf("frontier root of %d leaves: %s, RFC 6962 vectors say %s", n, got, referenceRoots[n])
		}
		r, err := RootAt(st, uint64(n))
		if err != nil || r.String() != referenceRoots[n] {
			t.Errorf("RootAt(%d) = %s, %v; want %s", n, r, err, referenceRoots[n])
		}
	}
	for l, level := range referenceNodes {
		for i, want := range level {
			got, err := st.Node(uint8(l), uint64(i))
			if err != nil || got.String() != want {
				t.Errorf("node (%d, %d) = %s, %v; want %s", l, i, got, err, want)
			}
		}
	}
}

// The audit paths and consistency proofs of the reference tree, written
// out from the RFC's definitions over the published node hashes.
func TestReferenceProofs(t *testing.T) {
	st, leaves := referenceTree(t)
	n := func(l, i int) string { return referenceNodes[l][i] }
	incl := []struct {
		index, size uint64
		path        []string
	}{
		{0, 1, nil},
		{0, 8, []string{n(0, 1), n(1, 1), n(2, 1)}},
		{5, 8, []string{n(0, 4), n(1, 3), n(2, 0)}},
		{2, 3, []string{n(1, 0)}}, // the root's right child: its path is MTH(D[0:2])
		{6, 8, []string{n(0, 7), n(1, 2), n(2, 0)}},
		{4, 6, []string{n(0, 5), n(2, 0)}},
		{2, 5, []string{n(0, 3), n(1, 0), n(0, 4)}},
	}
	for _, c := range incl {
		got, err := InclusionProof(st, c.index, c.size)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(hexes(t, c.path...)) {
			t.Errorf("PATH(%d, D[%d]) = %v, want %v", c.index, c.size, got, c.path)
		}
		root := mustHash(t, referenceRoots[c.size])
		if err := VerifyInclusion(c.index, c.size, leaves[c.index], got, root); err != nil {
			t.Errorf("PATH(%d, D[%d]) does not verify: %v", c.index, c.size, err)
		}
	}
	cons := []struct {
		m, n uint64
		path []string
	}{
		{1, 1, nil},
		{1, 8, []string{n(0, 1), n(1, 1), n(2, 1)}},
		{6, 8, []string{n(1, 2), n(1, 3), n(2, 0)}},
		{2, 5, []string{n(1, 1), n(0, 4)}},
		{2, 8, []string{n(1, 1), n(2, 1)}},
		{3, 7, nil},
	}
	// (3, 7): SUBPROOF(3, D[0:7]) with k=4 → SUBPROOF(3, D[0:4], true) :
	// MTH(D[4:7]); SUBPROOF(3, D[0:4]) with k=2 → SUBPROOF(1, D[2:4], false)
	// : MTH(D[0:2]) → [leaf 2, leaf 3] : MTH(D[0:2]).
	d47 := NodeHash(mustHash(t, n(1, 2)), leaves[6])
	cons[5].path = []string{n(0, 2), n(0, 3), n(1, 0), d47.String()}
	for _, c := range cons {
		got, err := ConsistencyProof(st, c.m, c.n)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(hexes(t, c.path...)) {
			t.Errorf("PROOF(%d, D[%d]) = %v, want %v", c.m, c.n, got, c.path)
		}
		r1, r2 := mustHash(t, referenceRoots[c.m]), mustHash(t, referenceRoots[c.n])
		if c.n == 7 {
			r2, _ = RootAt(st, 7)
		}
		if err := VerifyConsistency(c.m, c.n, r1, r2, got); err != nil {
			t.Errorf("PROOF(%d, D[%d]) does not verify: %v", c.m, c.n, err)
		}
	}
}

// tlogReader serves tlog's stored-hash indexes from a MemStore, so that
// golang.org/x/mod/sumdb/tlog (an independent RFC 6962 implementation)
// computes its hashes and proofs over the same tree.
func tlogReader(t testing.TB, leaves []Hash) tlog.HashReader {
	var stored []tlog.Hash
	for i, l := range leaves {
		hs, err := tlog.StoredHashesForRecordHash(int64(i), tlog.Hash(l), tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
			out := make([]tlog.Hash, len(idx))
			for j, x := range idx {
				out[j] = stored[x]
			}
			return out, nil
		}))
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, hs...)
	}
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for j, x := range idx {
			out[j] = stored[x]
		}
		return out, nil
	})
}

func randomLeaves(n int, seed uint64) []Hash {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	out := make([]Hash, n)
	for i := range out {
		var b [12]byte
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		out[i] = LeafHash(b[:])
	}
	return out
}

// Roots, audit paths and consistency proofs agree with tlog's for every
// size, index and pair up to 70 leaves, and each side's proofs verify with
// the other side's checker.
func TestAgreesWithTlog(t *testing.T) {
	const N = 70
	leaves := randomLeaves(N, 7)
	st, _ := MustTree(t, leaves)
	tr := tlogReader(t, leaves)
	for size := uint64(1); size <= N; size++ {
		th, err := tlog.TreeHash(int64(size), tr)
		if err != nil {
			t.Fatal(err)
		}
		root, err := RootAt(st, size)
		if err != nil || root != Hash(th) {
			t.Fatalf("size %d: root %s, tlog %s (%v)", size, root, Hash(th), err)
		}
		for i := uint64(0); i < size; i++ {
			p, err := InclusionProof(st, i, size)
			if err != nil {
				t.Fatal(err)
			}
			tp, err := tlog.ProveRecord(int64(size), int64(i), tr)
			if err != nil {
				t.Fatal(err)
			}
			if len(p) != len(tp) {
				t.Fatalf("PATH(%d, D[%d]): %d nodes, tlog %d", i, size, len(p), len(tp))
			}
			for j := range p {
				if p[j] != Hash(tp[j]) {
					t.Fatalf("PATH(%d, D[%d]) node %d differs from tlog's", i, size, j)
				}
			}
			if err := tlog.CheckRecord(toTlog(p), int64(size), th, int64(i), tlog.Hash(leaves[i])); err != nil {
				t.Fatalf("tlog rejects our PATH(%d, D[%d]): %v", i, size, err)
			}
			if err := VerifyInclusion(i, size, leaves[i], p, root); err != nil {
				t.Fatalf("PATH(%d, D[%d]): %v", i, size, err)
			}
		}
		for m := uint64(1); m <= size; m++ {
			p, err := ConsistencyProof(st, m, size)
			if err != nil {
				t.Fatal(err)
			}
			tp, err := tlog.ProveTree(int64(size), int64(m), tr)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(p) != fmt.Sprint(fromTlog(tp)) {
				t.Fatalf("PROOF(%d, D[%d]) differs from tlog's", m, size)
			}
			r1, _ := RootAt(st, m)
			if err := tlog.CheckTree(toTlog(p), int64(size), th, int64(m), tlog.Hash(r1)); err != nil {
				t.Fatalf("tlog rejects our PROOF(%d, D[%d]): %v", m, size, err)
			}
			if err := VerifyConsistency(m, size, r1, root, p); err != nil {
				t.Fatalf("PROOF(%d, D[%d]): %v", m, size, err)
			}
		}
	}
}

func toTlog(p []Hash) []tlog.Hash {
	out := make([]tlog.Hash, len(p))
	for i, h := range p {
		out[i] = tlog.Hash(h)
	}
	return out
}

func fromTlog(p []tlog.Hash) []Hash {
	out := make([]Hash, len(p))
	for i, h := range p {
		out[i] = Hash(h)
	}
	return out
}

// Every wrong claim is rejected: another index, leaf or root, a path
// with a node changed, added or removed.
func TestVerifyRejectsWrongClaims(t *testing.T) {
	leaves := randomLeaves(37, 3)
	st, _ := MustTree(t, leaves)
	for size := uint64(1); size <= 37; size++ {
		root, _ := RootAt(st, size)
		for i := uint64(0); i < size; i++ {
			p, _ := InclusionProof(st, i, size)
			bad := func(what string, err error) {
				t.Helper()
				if !errors.Is(err, ErrProof) {
					t.Fatalf("PATH(%d, D[%d]) with %s: %v, want ErrProof", i, size, what, err)
				}
			}
			if size > 1 {
				bad("index+1", VerifyInclusion((i+1)%size, size, leaves[i], p, root))
			}
			// (A wrong size alone is not always detectable: paths of equal
			// shape fit several sizes. The root binds the size.)
			bad("other leaf", VerifyInclusion(i, size, leaves[(i+1)%37], p, root))
			bad("other root", VerifyInclusion(i, size, leaves[i], p, NodeHash(root, root)))
			bad("node added", VerifyInclusion(i, size, leaves[i], append(append([]Hash(nil), p...), leaves[1]), root))
			if len(p) > 0 {
				bad("node removed", VerifyInclusion(i, size, leaves[i], p[:len(p)-1], root))
				q := append([]Hash(nil), p...)
				q[len(q)/2][3] ^= 1
				bad("node changed", VerifyInclusion(i, size, leaves[i], q, root))
			}
		}
		for m := uint64(1); m < size; m++ {
			p, _ := ConsistencyProof(st, m, size)
			r1, _ := RootAt(st, m)
			if err := VerifyConsistency(m, size, r1, root, p); err != nil {
				t.Fatal(err)
			}
			if err := VerifyConsistency(m, size, root, root, p); !errors.Is(err, ErrProof) {
				t.Fatalf("PROOF(%d, D[%d]) with a wrong first root: %v", m, size, err)
			}
			if err := VerifyConsistency(m, size, r1, r1, p); !errors.Is(err, ErrProof) {
				t.Fatalf("PROOF(%d, D[%d]) with a wrong second root: %v", m, size, err)
			}
			q := append([]Hash(nil), p...)
			q[0][0] ^= 1
			if err := VerifyConsistency(m, size, r1, root, q); !errors.Is(err, ErrProof) {
				t.Fatalf("PROOF(%d, D[%d]) changed: %v", m, size, err)
			}
		}
	}
}

// FuzzVerify feeds arbitrary proofs, indexes and sizes to both verifiers:
// they never panic, and whatever they accept tlog accepts too (an
// independent implementation cannot be fooled by the same bytes).
func FuzzVerify(f *testing.F) {
	leaves := randomLeaves(19, 11)
	st, _ := MustTree(f, leaves)
	for size := uint64(1); size <= 19; size += 3 {
		p, _ := InclusionProof(st, size/2, size)
		var b []byte
		for _, h := range p {
			b = append(b, h[:]...)
		}
		f.Add(size/2, size, b, uint64(1))
	}
	f.Add(uint64(0), uint64(0), []byte{}, uint64(0))
	f.Add(^uint64(0), ^uint64(0), make([]byte, 64*32), ^uint64(0))
	f.Fuzz(func(t *testing.T, index, size uint64, raw []byte, m uint64) {
		var proof []Hash
		for len(raw) >= 32 && len(proof) < 70 {
			proof = append(proof, Hash(raw[:32]))
			raw = raw[32:]
		}
		leaf := leaves[index%19]
		root, _ := RootAt(st, min(max(size, 1), 19))
		if err := VerifyInclusion(index, size, leaf, proof, root); err == nil {
			if size > 1<<62 || index > 1<<62 {
				t.Fatalf("accepted an inclusion in an impossible tree (index %d, size %d)", index, size)
			}
			if terr := tlog.CheckRecord(toTlog(proof), int64(size), tlog.Hash(root), int64(index), tlog.Hash(leaf)); terr != nil {
				t.Fatalf("accepted PATH(%d, D[%d]) that tlog rejects: %v", index, size, terr)
			}
		}
		r1, _ := RootAt(st, min(max(m, 1), 19))
		if err := VerifyConsistency(m, size, r1, root, proof); err == nil && m > 0 && m < size {
			if size > 1<<62 {
				t.Fatalf("accepted a consistency proof for an impossible tree (size %d)", size)
			}
			if terr := tlog.CheckTree(toTlog(proof), int64(size), tlog.Hash(root), int64(m), tlog.Hash(r1)); terr != nil {
				t.Fatalf("accepted PROOF(%d, D[%d]) that tlog rejects: %v", m, size, terr)
			}
		}
	})
}

func TestFrontierAtAndParse(t *testing.T) {
	leaves := randomLeaves(100, 5)
	st, _ := MustTree(t, leaves)
	var f Frontier
	for n := uint64(0); n <= 100; n++ {
		if n > 0 {
			f.Append(leaves[n-1], nil)
		}
		g, err := FrontierAt(st, n)
		if err != nil || fmt.Sprint(g) != fmt.Sprint(f) || !g.Valid() {
			t.Fatalf("FrontierAt(%d) = %v, %v; want %v", n, g, err, f)
		}
		p, err := ParseFrontier(n, f.Hex())
		if err != nil || p.Root() != f.Root() {
			t.Fatalf("ParseFrontier(%d): %v", n, err)
		}
	}
	if _, err := ParseFrontier(3, []string{leaves[0].String()}); err == nil {
		t.Fatal("a frontier with the wrong node count parsed")
	}
}
