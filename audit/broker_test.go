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

// stdoutDevice is a non-durable device writing to sink.
func stdoutDevice(t testing.TB, name string, sink Sink) *Device {
	d := testDevice(t, name, sink, time.Second)
	d.Config.Type = TypeStdout
	return d
}

// An entry is acknowledged only when every durable device recorded it: one
// failing durable device fails the entry even when another records it.
func TestBrokerEveryDurableDeviceMustRecord(t *testing.T) {
	good, bad := &fakeSink{}, &fakeSink{fail: func(int) error { return errors.New("EIO") }}
	b := NewBroker(BrokerConfig{})
	b.Add(testDevice(t, "a", bad, time.Second))
	b.Add(testDevice(t, "b", good, time.Second))
	err := b.LogRequest(context.Background(), event())
	if err == nil || !strings.Contains(err.Error(), `device "a"`) || !strings.Contains(err.Error(), "EIO") {
		t.Fatalf("a durable device failed: got %v", err)
	}
	if f, msg := b.Device("a").Failed(); !f || !strings.Contains(msg, "EIO") {
		t.Fatalf("failing device not marked failed: %v %q", f, msg)
	}
	b.Remove("a")
	if err := b.LogRequest(context.Background(), event()); err != nil {
		t.Fatalf("only the good device left: %v", err)
	}
}

// A stdout device never acknowledges: when it records an entry the durable
// file device could not, the entry is not acknowledged; when it fails, a
// durable device that recorded suffices.
func TestBrokerStdoutNeverAcknowledges(t *testing.T) {
	out, file := &fakeSink{}, &fakeSink{fail: func(int) error { return errors.New("fsync: EIO") }}
	b := NewBroker(BrokerConfig{})
	b.Add(stdoutDevice(t, "out", out))
	b.Add(testDevice(t, "file", file, time.Second))
	if err := b.LogRequest(context.Background(), event()); err == nil {
		t.Fatal("the stdout device acknowledged an entry the durable device did not record")
	}
	b2 := NewBroker(BrokerConfig{})
	b2.Add(stdoutDevice(t, "out", &fakeSink{fail: func(int) error { return errors.New("EPIPE") }}))
	good := &fakeSink{}
	b2.Add(testDevice(t, "file", good, time.Second))
	if err := b2.LogRequest(context.Background(), event()); err != nil || good.count() != 1 {
		t.Fatalf("durable device recorded, stdout failed: %v (%d entries)", err, good.count())
	}
	// A file device that does not fsync every entry is not durable either.
	d := testDevice(t, "lazy", &fakeSink{}, time.Second)
	d.Config.Fsync = chain.FsyncInterval
	if d.Durable() || !testDevice(t, "x", &fakeSink{}, time.Second).Durable() || stdoutDevice(t, "o", &fakeSink{}).Durable() {
		t.Fatal("durability of file (interval), file (always), stdout")
	}
}

// A hung device fails after its write timeout instead of hanging the
// request; a hung non-durable device beside a durable one does not delay
// requests at all.
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
	b.Remove("hung")
	good := &fakeSink{}
	b.Add(testDevice(t, "good", good, time.Hour))
	b.Add(stdoutDevice(t, "stuck-stdout", &fakeSink{hang: true}))
	b.Device("stuck-stdout").Config.WriteTimeout = time.Hour
	go func() { done <- b.LogRequest(context.Background(), event()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a hung stdout device delayed a request that the durable device recorded")
	}
}

// With require_audit on and no durable device, every request is refused
// except sealing and the audit device configuration; a request made while
// sealed is recorded, not gated.
func TestBrokerRequireDurableGate(t *testing.T) {
	out := &fakeSink{}
	b := NewBroker(BrokerConfig{})
	b.SetRequireDurable(true)
	b.Add(stdoutDevice(t, "out", out))
	req := func(op core.Operation, path string) *core.AuditEvent {
		ev := event()
		ev.Request.Operation, ev.Request.Path = op, path
		return ev
	}
	for _, ev := range []*core.AuditEvent{req(core.OpRead, "secret/data/x"), req(core.OpUpdate, "sys/mounts/kv"),
		req(core.OpRead, "sys/audit/checkpoint-key"), req(core.OpUpdate, "sys/audit/verify")} {
		if err := b.LogRequest(context.Background(), ev); !errors.Is(err, ErrNoDurableDevice) {
			t.Fatalf("%s %s: got %v, want refused", ev.Request.Operation, ev.Request.Path, err)
		}
	}
	for _, ev := range []*core.AuditEvent{req(core.OpUpdate, "sys/seal"), req(core.OpRead, "sys/audit"),
		req(core.OpUpdate, "sys/audit/file"), req(core.OpDelete, "sys/audit/file"), req(core.OpRead, "sys/audit/settings")} {
		if err := b.LogRequest(context.Background(), ev); err != nil {
			t.Fatalf("%s %s: got %v, want served", ev.Request.Operation, ev.Request.Path, err)
		}
	}
	sealed := req(core.OpRead, "secret/data/x")
	sealed.Sealed = true
	if err := b.LogRequest(context.Background(), sealed); err != nil {
		t.Fatalf("sealed rejection: %v", err)
	}
	if out.count() != 6 {
		t.Fatalf("stdout recorded %d entries, want the 5 exempt and the sealed one", out.count())
	}
	// A durable device lifts the gate.
	file := &fakeSink{}
	b.Add(testDevice(t, "file", file, time.Second))
	if err := b.LogRequest(context.Background(), req(core.OpRead, "secret/data/x")); err != nil || file.count() != 1 {
		t.Fatalf("with a durable device: %v, %d entries", err, file.count())
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

// While the barrier is sealed, entries are written at once, without the
// fields that need a salt — whatever the device's salt or log_raw — so
// tokens and data are never written in clear.
func TestBrokerSealedEntriesOmitSaltedFields(t *testing.T) {
	var sealed atomic.Bool
	sealed.Store(true)
	s := &fakeSink{}
	b := NewBroker(BrokerConfig{BarrierSealed: sealed.Load})
	d := testDevice(t, "a", s, time.Second)
	d.fopts.Raw = true
	b.Add(d)
	ev := event()
	ev.Err = core.ErrSealed
	ev.Request.ClientToken = "hvs.sealed-token"
	ev.Request.Data = map[string]any{"password": "s3cr3t"}
	ev.Request.Principal = &core.Principal{ClientToken: "hvs.sealed-token", Accessor: "acc-123", DisplayName: "root"}
	if err := b.LogRequest(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if s.count() != 1 {
		t.Fatalf("%d entries written while sealed", s.count())
	}
	body := string(s.bodies[0])
	for _, secret := range []string{"hvs.sealed-token", "s3cr3t", "acc-123", "hmac-sha256"} {
		if strings.Contains(body, secret) {
			t.Fatalf("sealed entry contains %q: %s", secret, body)
		}
	}
	if !strings.Contains(body, `"path":"secret/data/x"`) || !strings.Contains(body, "Vault is sealed") {
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

// Between the barrier opening and the devices reopening with their salts
// events fail closed; once the barrier is sealed they are recorded by the
// sealed-mode devices (the response of sys/seal itself).
func TestBrokerClosedWindow(t *testing.T) {
	var sealed atomic.Bool
	s := &fakeSink{}
	b := NewBroker(BrokerConfig{BarrierSealed: sealed.Load})
	b.Add(testDevice(t, "a", s, time.Second))
	b.SetRequired(true)
	b.SetSealedMode(true)
	if err := b.LogRequest(context.Background(), event()); !errors.Is(err, ErrNotOpen) {
		t.Fatalf("sealed-mode devices, barrier open: got %v", err)
	}
	sealed.Store(true)
	if err := b.LogResponse(context.Background(), event()); err != nil || s.count() != 1 {
		t.Fatalf("sealed-mode devices, barrier sealed: got %v, %d entries", err, s.count())
	}
}
