package barrier

import (
	"context"
	"crypto/rand"
	"testing"
)

func benchBarrier(b *testing.B, size int) (*Barrier, []byte) {
	now := t0
	bar, _, _ := MustUnsealed(b, &now)
	v := make([]byte, size)
	rand.Read(v)
	return bar, v
}

func BenchmarkPut1KiB(b *testing.B) {
	bar, v := benchBarrier(b, 1024)
	ctx := context.Background()
	b.SetBytes(int64(len(v)))
	b.ReportAllocs()
	for b.Loop() {
		if err := bar.Put(ctx, "bench/key", v); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGet1KiB(b *testing.B) {
	bar, v := benchBarrier(b, 1024)
	ctx := context.Background()
	if err := bar.Put(ctx, "bench/key", v); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(v)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bar.Get(ctx, "bench/key"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetParallel1KiB(b *testing.B) {
	bar, v := benchBarrier(b, 1024)
	ctx := context.Background()
	if err := bar.Put(ctx, "bench/key", v); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(v)))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := bar.Get(ctx, "bench/key"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
