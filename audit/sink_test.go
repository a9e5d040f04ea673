package audit

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/audit/chain"
)

// runSinkConformance is the suite every Sink passes: concurrent writes are
// all recorded, each as one line, in an order consistent with each writer's
// own order; Close is idempotent and later writes fail.
func runSinkConformance(t *testing.T, open func(t *testing.T) (Sink, func() []string)) {
	t.Run("concurrent writes all recorded, one line each", func(t *testing.T) {
		s, lines := open(t)
		var wg sync.WaitGroup
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 50; i++ {
					if err := s.Write(context.Background(), []byte(fmt.Sprintf(`{"g":%d,"i":%d}`, g, i))); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		last := map[int]int{}
		n := 0
		for _, l := range lines() {
			var g, i int
			if _, err := fmt.Sscanf(l, `{"g":%d,"i":%d`, &g, &i); err != nil {
				continue // chain records
			}
			if prev, ok := last[g]; ok && i != prev+1 {
				t.Fatalf("writer %d: %d after %d", g, i, prev)
			}
			last[g] = i
			n++
		}
		if n != 400 {
			t.Fatalf("%d entries recorded, want 400", n)
		}
	})
	t.Run("close is idempotent and final", func(t *testing.T) {
		s, _ := open(t)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Write(context.Background(), []byte(`{"late":true}`)); err == nil {
			t.Fatal("write after close succeeded")
		}
	})
}

func TestFileSinkConformance(t *testing.T) {
	runSinkConformance(t, func(t *testing.T) (Sink, func() []string) {
		path := filepath.Join(t.TempDir(), "audit.log")
		dc := &DeviceConfig{Name: "file", Type: TypeFile, Path: path, WriteTimeout: 10 * time.Second}
		s, err := OpenFileSink(dc, FileEnv{NodeID: "n1"})
		if err != nil {
			t.Fatal(err)
		}
		return s, func() []string {
			b, _ := os.ReadFile(path)
			return strings.Split(strings.TrimSpace(string(b)), "\n")
		}
	})
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func TestStreamSinkConformance(t *testing.T) {
	runSinkConformance(t, func(t *testing.T) (Sink, func() []string) {
		var buf lockedBuffer
		s := NewStreamSink(&buf, time.Second)
		return s, func() []string {
			buf.mu.Lock()
			defer buf.mu.Unlock()
			var out []string
			sc := bufio.NewScanner(bytes.NewReader(buf.b.Bytes()))
			for sc.Scan() {
				out = append(out, sc.Text())
			}
			return out
		}
	})
}

// A stdout device whose reader is stuck fails after its timeout.
func TestStreamSinkBlockedWriterTimesOut(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	s := NewStreamSink(blockingWriter(block), 50*time.Millisecond)
	defer s.Close()
	err := s.Write(context.Background(), []byte(`{}`))
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("got %v", err)
	}
	_ = chain.ErrTimeout
}

type blockingWriter chan struct{}

func (b blockingWriter) Write(p []byte) (int, error) { <-b; return len(p), nil }
