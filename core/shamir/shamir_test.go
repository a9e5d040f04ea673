package shamir

import (
	"bytes"
	"errors"
	"math/bits"
	mrand "math/rand/v2"
	"testing"

	"github.com/vigilsec/vigil/core"
)

// subsets calls fn with every subset of shares, identified by bitmask.
func subsets(shares [][]byte, fn func(mask uint32, sub [][]byte)) {
	for mask := uint32(0); mask < 1<<len(shares); mask++ {
		sub := make([][]byte, 0, bits.OnesCount32(mask))
		for i := range shares {
			if mask&(1<<i) != 0 {
				sub = append(sub, shares[i])
			}
		}
		fn(mask, sub)
	}
}

func mustSplit(tb testing.TB, secret []byte, n, t int) [][]byte {
	tb.Helper()
	shares, err := Split(secret, n, t)
	if err != nil {
		tb.Fatalf("Split(%d, %d): %v", n, t, err)
	}
	if len(shares) != n {
		tb.Fatalf("Split(%d, %d) returned %d shares", n, t, len(shares))
	}
	return shares
}

func TestEverySubset(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef") // 32 bytes: a false match is 2^-256
	for _, tc := range []struct{ n, t int }{{2, 2}, {3, 2}, {3, 3}, {5, 3}, {5, 5}, {6, 2}, {8, 4}, {10, 7}} {
		shares := mustSplit(t, secret, tc.n, tc.t)
		subsets(shares, func(mask uint32, sub [][]byte) {
			got, err := Combine(sub)
			switch {
			case len(sub) < 2:
				if !errors.Is(err, ErrTooFewParts) {
					t.Errorf("(%d,%d) mask %b: err = %v, want ErrTooFewParts", tc.n, tc.t, mask, err)
				}
			case err != nil:
				t.Errorf("(%d,%d) mask %b: %v", tc.n, tc.t, mask, err)
			case len(sub) >= tc.t && !bytes.Equal(got, secret):
				t.Errorf("(%d,%d) mask %b: got %x, want the secret", tc.n, tc.t, mask, got)
			case len(sub) < tc.t && bytes.Equal(got, secret):
				t.Errorf("(%d,%d) mask %b: %d shares below threshold revealed the secret", tc.n, tc.t, mask, len(sub))
			}
		})
	}
}

func TestOneByteSecret(t *testing.T) {
	for _, s := range []byte{0x00, 0x01, 0x80, 0xff} {
		shares := mustSplit(t, []byte{s}, 4, 3)
		subsets(shares, func(mask uint32, sub [][]byte) {
			if len(sub) < 3 {
				return // a 1-byte guess is right 1 time in 256; only check recombination
			}
			got, err := Combine(sub)
			if err != nil || !bytes.Equal(got, []byte{s}) {
				t.Errorf("secret %#x mask %b: got %x, %v", s, mask, got, err)
			}
		})
	}
}

func TestMaxParts(t *testing.T) {
	secret := bytes.Repeat([]byte{0xa5, 0x5a}, 16)
	r := mrand.New(mrand.NewPCG(1, 2))
	for _, th := range []int{2, 128, 255} {
		shares := mustSplit(t, secret, 255, th)
		seen := map[byte]bool{}
		for _, s := range shares {
			x := s[len(s)-1]
			if x == 0 || seen[x] {
				t.Fatalf("threshold %d: x coordinate %d zero or repeated", th, x)
			}
			seen[x] = true
		}
		for range 3 {
			r.Shuffle(len(shares), func(i, j int) { shares[i], shares[j] = shares[j], shares[i] })
			got, err := Combine(shares[:th])
			if err != nil || !bytes.Equal(got, secret) {
				t.Fatalf("threshold %d: got %x, %v", th, got, err)
			}
			if th > 2 {
				got, err = Combine(shares[:th-1])
				if err != nil || bytes.Equal(got, secret) {
					t.Fatalf("threshold %d with %d shares: got %x, %v; want a non-secret", th, th-1, got, err)
				}
			}
		}
	}
}

func TestShareShape(t *testing.T) {
	secret := []byte("shape")
	a := mustSplit(t, secret, 5, 3)
	b := mustSplit(t, secret, 5, 3)
	for i, s := range a {
		if len(s) != len(secret)+ShareOverhead {
			t.Fatalf("share %d has %d bytes, want %d", i, len(s), len(secret)+ShareOverhead)
		}
		if bytes.Contains(s, secret) {
			t.Fatalf("share %d contains the secret in the clear", i)
		}
	}
	same := true
	for i := range a {
		same = same && bytes.Equal(a[i], b[i])
	}
	if same {
		t.Fatal("two splits of the same secret produced identical shares")
	}
}

func TestSplitInvalid(t *testing.T) {
	for _, tc := range []struct {
		name      string
		secret    []byte
		parts, th int
	}{
		{"empty secret", nil, 3, 2},
		{"threshold 1", []byte("x"), 3, 1},
		{"threshold 0", []byte("x"), 3, 0},
		{"threshold above parts", []byte("x"), 3, 4},
		{"parts above 255", []byte("x"), 256, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			shares, err := Split(tc.secret, tc.parts, tc.th)
			if err == nil || shares != nil {
				t.Fatalf("Split = %d shares, %v; want an error", len(shares), err)
			}
			if core.CodeOf(err) != core.CodeInvalid {
				t.Fatalf("code = %q, want %q", core.CodeOf(err), core.CodeInvalid)
			}
		})
	}
}

func TestCombineInvalid(t *testing.T) {
	for _, tc := range []struct {
		name  string
		parts [][]byte
		want  error
	}{
		{"no parts", nil, ErrTooFewParts},
		{"one part", [][]byte{{1, 2}}, ErrTooFewParts},
		{"too short", [][]byte{{1}, {2}}, ErrPartTooShort},
		{"empty", [][]byte{{}, {}}, ErrPartTooShort},
		{"lengths differ", [][]byte{{1, 2}, {1, 2, 3}}, ErrPartLengths},
		{"zero x", [][]byte{{1, 0}, {1, 2}}, ErrZeroX},
		{"duplicate x", [][]byte{{1, 7}, {2, 7}}, ErrDuplicatePart},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Combine(tc.parts)
			if !errors.Is(err, tc.want) || got != nil {
				t.Fatalf("Combine = %x, %v; want %v", got, err, tc.want)
			}
			if core.CodeOf(err) != core.CodeInvalid {
				t.Fatalf("code = %q, want %q", core.CodeOf(err), core.CodeInvalid)
			}
		})
	}
}

// TestKnownAnswers pins the field (AES's, as Vault uses) and the share format
// with values worked out by hand.
func TestKnownAnswers(t *testing.T) {
	// FIPS-197 section 4.2 examples.
	if got := mult(0x57, 0x83); got != 0xc1 {
		t.Errorf("mult(0x57, 0x83) = %#x, want 0xc1", got)
	}
	if got := mult(0x57, 0x13); got != 0xfe {
		t.Errorf("mult(0x57, 0x13) = %#x, want 0xfe", got)
	}
	// FIPS-197 section 5.1.1: the S-box input 0x53 has inverse 0xca.
	if got := inverse(0x53); got != 0xca {
		t.Errorf("inverse(0x53) = %#x, want 0xca", got)
	}
	for a := 1; a < 256; a++ {
		if p := mult(byte(a), inverse(byte(a))); p != 1 {
			t.Fatalf("a * a^-1 = %#x for a = %#x", p, a)
		}
	}

	// f0(x) = 0x42 + 2x + 3x^2, f1(x) = 0 + x + x^2. By hand: 2*2 = 4, 3*4 = 0xc,
	// 2*3 = 6, 3*3 = 5, 3*5 = 0xf, so f0(1..3) = 43 4a 4b and f1(1..3) = 00 06 06.
	shares := split([]byte{0x42, 0x00}, []byte{1, 2, 3}, 3, []byte{2, 3, 1, 1})
	want := [][]byte{{0x43, 0x00, 0x01}, {0x4a, 0x06, 0x02}, {0x4b, 0x06, 0x03}}
	for i := range want {
		if !bytes.Equal(shares[i], want[i]) {
			t.Errorf("share %d = %x, want %x", i, shares[i], want[i])
		}
	}
	if got, err := Combine(want); err != nil || !bytes.Equal(got, []byte{0x42, 0x00}) {
		t.Errorf("Combine(known shares) = %x, %v; want 4200", got, err)
	}

	// f(x) = 0 + 2x: at x = 0x80 the product overflows and reduces to 0x1b.
	shares = split([]byte{0x00}, []byte{0x80, 0x01}, 2, []byte{2})
	want = [][]byte{{0x1b, 0x80}, {0x02, 0x01}}
	for i := range want {
		if !bytes.Equal(shares[i], want[i]) {
			t.Errorf("reducing share %d = %x, want %x", i, shares[i], want[i])
		}
	}
	if got, err := Combine(want); err != nil || !bytes.Equal(got, []byte{0}) {
		t.Errorf("Combine(reducing shares) = %x, %v; want 00", got, err)
	}
}

func FuzzCombine(f *testing.F) {
	f.Add(byte(3), []byte{0x43, 0x00, 0x01, 0x4a, 0x06, 0x02, 0x4b, 0x06, 0x03})
	f.Add(byte(2), []byte{1, 7, 2, 7})
	f.Add(byte(0), []byte{})
	f.Add(byte(1), []byte{1, 2, 3})
	f.Add(byte(4), []byte{1, 2, 3, 4, 5, 6, 7})
	f.Fuzz(func(t *testing.T, size byte, data []byte) {
		var parts [][]byte
		for n := max(int(size), 1); len(data) > 0; data = data[min(n, len(data)):] {
			parts = append(parts, data[:min(n, len(data))])
		}
		got, err := Combine(parts)
		if err == nil && len(got) != len(parts[0])-ShareOverhead {
			t.Fatalf("secret has %d bytes from parts of %d", len(got), len(parts[0]))
		}
	})
}

func FuzzSplitCombine(f *testing.F) {
	f.Add([]byte("secret"), uint8(5), uint8(3))
	f.Add([]byte{0}, uint8(2), uint8(2))
	f.Fuzz(func(t *testing.T, secret []byte, n, th uint8) {
		shares, err := Split(secret, int(n), int(th))
		if err != nil {
			return
		}
		got, err := Combine(shares[len(shares)-int(th):])
		if err != nil || !bytes.Equal(got, secret) {
			t.Fatalf("Combine = %x, %v; want %x", got, err, secret)
		}
	})
}

func BenchmarkSplit5of3(b *testing.B) {
	secret := make([]byte, 32)
	for b.Loop() {
		if _, err := Split(secret, 5, 3); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCombine3(b *testing.B) {
	shares := mustSplit(b, make([]byte, 32), 5, 3)
	for b.Loop() {
		if _, err := Combine(shares[:3]); err != nil {
			b.Fatal(err)
		}
	}
}
