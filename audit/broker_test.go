package audit

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilsec/vigil/audit/chain"
	"github.com/vigilsec/vigil/audit/format/vault"
	"github.com/vigilsec/vigil/audit/hmac"
	"github.com/vigilsec/vigil/core"
)

// fakeSink records bodies; fail, when set, decides each write's error; hang
// blocks until the context ends.
type fakeSink struct {
	mu     sync.Mutex
	bodies [][]byte
	fail   func(n int) error
	hang   bool
	calls  atomic.Int32
}

func (f *fakeSink) Write(ctx context.Context, body []byte) error {
	n := int(f.calls.Add(1))
	if f.hang {
		<-ctx.Done()
		return ctx.Err()
	}
	if f.fail != nil {
		if err := f.fail(n); err != nil {
			return err
		}
	}
	f.mu.Lock()
	f.bodies = append(f.bodies, append([]byte(nil), body...))
	f.mu.Unlock()
	return nil
}

func (f *fakeSink) Close() error { return nil }

func (f *fakeSink) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.bodies)
}

func testDevice(t testing.TB, name string, sink Sink, timeout time.Duration) *Device {
	t.Helper()
	salt, err := hmac.New([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	dc := &DeviceConfig{Name: name, Type: TypeFile, WriteTimeout: timeout}
	return NewDevice(dc, "config", vault.Options{Salt: salt, HMACAccessor: true}, sink, nil)
}

func event() *core.AuditEvent {
	return &core.AuditEvent{Type: "request", Time: time.Unix(1700000000, 0), Request: &core.Request{ID: "r1", Operation: core.OpRead, Path: "secret/data/x"}}
}

func TestBrokerZeroDevicesPolicy(t *testing.T) {
	b := NewBroker(BrokerConfig{})
	if err := b.LogRequest(context.Background(), event()); err != nil {
		t.Fatalf("audit never configured: want pass-through, got %v", err)
	}
	b.SetRequired(true)
	err := b.LogRequest(context.Background(), event())
	if !errors.Is(err, ErrNoDevice) || core.CodeOf(err) != core.CodeAuditFailed {
		t.Fatalf("required with no device: got %v", err)
	}
}

func TestBrokerFanOutOneDeviceSuffices(t *testing.T) {
	good, bad := &fakeSink{}, &fakeSink{fail: func(int) error { return errors.New("EIO") }}
	b := NewBroker(BrokerConfig{})
	b.Add(testDevice(t, "a", bad, time.Second))
	b.Add(testDevice(t, "b", good, time.Second))
	if err := b.LogRequest(context.Background(), event()); err != nil {
		t.Fatalf("one device recorded: %v", err)
	}
	if good.count() != 1 {
		t.Fatalf("good device has %d entries", good.count())
	}
	// The broker returned at the first success; the failing write ends
	// on its own goroutine.
	for deadline := time.Now().Add(10 * time.Second); bad.calls.Load() == 0 || time.Now().Before(deadline); {
		if f, _ := b.Device("a").Failed(); f {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if f, msg := b.Device("a").Failed(); !f || !strings.Contains(msg, "EIO") {
		t.Fatalf("failing device not marked failed: %v %q", f, msg)
	}
	b.Remove("b")
	err := b.LogRequest(context.Background(), event())
	if err == nil || !strings.Contains(err.Error(), `device "a"`) {
		t.Fatalf("only failing device left: got %v", err)
	}
}

// A hung device fails after its write timeout instead of hanging the
// request; with a healthy device beside it, requests are not delayed.
func TestBrokerHungDeviceBounded(t *testing.T) {
	hung := &fakeSink{hang: true}
	b := NewBroker(BrokerConfig{})
	b.Add(testDevice(t, "hung", hung, 50*time.Millisecond))
	done := make(chan error, 1)
	go func() { done <- b.LogRequest(context.Background(), event()) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "in time") {
			t.Fatalf("hung device: got %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("LogRequest hung with a hung device")
	}
	good := &fakeSink{}
	b.Add(testDevice(t, "good", good, time.Hour))
	b.Device("hung").Config.WriteTimeout = time.Hour
	go func() { done <- b.LogRequest(context.Background(), event()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a hung device delayed a request that a healthy device recorded")
	}
}

// A client that disconnects does not stop its entries being recorded.
func TestBrokerIgnoresClientCancel(t *testing.T) {
	s := &fakeSink{}
	b := NewBroker(BrokerConfig{})
	b.Add(testDevice(t, "a", s, time.Second))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.LogResponse(ctx, event()); err != nil || s.count() != 1 {
		t.Fatalf("err=%v count=%d", err, s.count())
	}
}

func TestBrokerDiskFullRetriesAfterRelease(t *testing.T) {
	s := &fakeSink{fail: func(n int) error {
		if n == 1 {
			return fmt.Errorf("write: %w", chain.ErrDiskFull)
		}
		return nil
	}}
	released := 0
	b := NewBroker(BrokerConfig{DiskFull: func(string) bool { released++; return true }})
	b.Add(testDevice(t, "a", s, time.Second))
	if err := b.LogRequest(context.Background(), event()); err != nil {
		t.Fatal(err)
	}
	if released != 1 || s.count() != 1 {
		t.Fatalf("released=%d count=%d", released, s.count())
	}
	// Without a reserve to release, the error says what happened.
	s.calls.Store(0)
	b2 := NewBroker(BrokerConfig{DiskFull: func(string) bool { return false }})
	b2.Add(testDevice(t, "a", s, time.Second))
	err := b2.LogRequest(context.Background(), event())
	if err == nil || !strings.Contains(err.Error(), "disk full (ENOSPC)") || !errors.Is(err, chain.ErrDiskFull) {
		t.Fatalf("got %v", err)
	}
}

func TestBrokerSealedBufferedUntilUnseal(t *testing.T) {
	b := NewBroker(BrokerConfig{SealedBuffer: 2})
	for i := 0; i < 3; i++ {
		ev := event()
		ev.Sealed, ev.Err = true, core.ErrSealed
		ev.Request.ClientToken = "hvs.sealed-token"
		if err := b.LogRequest(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	s := &fakeSink{}
	b.Add(testDevice(t, "a", s, time.Second))
	n, dropped := b.FlushSealed(context.Background())
	if n != 2 || dropped != 1 || s.count() != 2 {
		t.Fatalf("written=%d dropped=%d count=%d", n, dropped, s.count())
	}
	body := string(s.bodies[0])
	if !strings.Contains(body, `"sealed":true`) || strings.Contains(body, "hvs.sealed-token") {
		t.Fatalf("sealed entry: %s", body)
	}
}

// BenchmarkBrokerLog measures Broker.LogRequest through a real file device
// (group-committed fsync) with many concurrent callers.
func BenchmarkBrokerLog(b *testing.B) {
	for _, mode := range []struct {
		name string
		m    chain.FsyncMode
	}{{"fsync=always", chain.FsyncAlways}, {"fsync=none", chain.FsyncNone}} {
		b.Run(mode.name, func(b *testing.B) {
			dc := &DeviceConfig{Name: "file", Type: TypeFile, Path: filepath.Join(b.TempDir(), "audit.log"), Fsync: mode.m, WriteTimeout: 30 * time.Second,
				CheckpointEvery: -1, CheckpointInterval: -1}
			sink, err := OpenFileSink(dc, FileEnv{NodeID: "bench"})
			if err != nil {
				b.Fatal(err)
			}
			br := NewBroker(BrokerConfig{})
			br.Add(testDevice(b, "file", sink, 30*time.Second))
			defer br.Close()
			ev := event()
			ev.Request.Data = map[string]any{"password": "s3cr3t", "user": "alice", "n": 3}
			b.SetParallelism(16)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := br.LogRequest(context.Background(), ev); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}

// Between the barrier opening and the devices opening (or the devices
// closing and the barrier sealing) events fail closed; once the barrier is
// sealed they are buffered (the response of sys/seal itself).
func TestBrokerClosedWindow(t *testing.T) {
	var sealed atomic.Bool
	b := NewBroker(BrokerConfig{BarrierSealed: sealed.Load})
	b.SetRequired(true)
	b.SetSealed(true)
	if err := b.LogRequest(context.Background(), event()); !errors.Is(err, ErrNotOpen) {
		t.Fatalf("devices closed, barrier open: got %v", err)
	}
	sealed.Store(true)
	if err := b.LogResponse(context.Background(), event()); err != nil {
		t.Fatalf("devices closed, barrier sealed: got %v", err)
	}
	s := &fakeSink{}
	b.Add(testDevice(t, "a", s, time.Second))
	b.SetSealed(false)
	sealed.Store(false)
	if n, _ := b.FlushSealed(context.Background()); n != 1 || s.count() != 1 {
		t.Fatalf("flushed %d, sink has %d", n, s.count())
	}
}
