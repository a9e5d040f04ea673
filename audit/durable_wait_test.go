package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilsec/vigil/audit/chain"
	"github.com/vigilsec/vigil/core"
)

// durableLog is a real file device whose fsyncs are observed: durable is
// the log's size at its last fsync, so the bytes before it are durable.
type durableLog struct {
	path    string
	durable atomic.Int64
	failW   atomic.Bool // fail the next batch write
	// intercepted counts request events the broker's Intercept saw.
	intercepted atomic.Int32
}

// durablePrefix returns the durable bytes of the log.
func (l *durableLog) durablePrefix(t *testing.T) []byte {
	b, err := os.ReadFile(l.path)
	if err != nil {
		t.Error(err)
		return nil
	}
	return b[:min(int64(len(b)), l.durable.Load())]
}

func newDurableBroker(t *testing.T) (*Broker, *durableLog) {
	t.Helper()
	l := &durableLog{path: filepath.Join(t.TempDir(), "audit.log")}
	dc := &DeviceConfig{Name: "file", Type: TypeFile, Path: l.path, Fsync: chain.FsyncAlways, WriteTimeout: 10 * time.Second}
	faults := &chain.Faults{
		BeforeWrite: func(b []byte) (int, error) {
			if l.failW.CompareAndSwap(true, false) {
				return 0, errors.New("injected write failure")
			}
			return 0, nil
		},
		AfterSync: func() {
			if fi, err := os.Stat(l.path); err == nil {
				l.durable.Store(fi.Size())
			}
		},
	}
	sink, err := OpenFileSink(dc, FileEnv{NodeID: "node-a", Faults: faults, WatchInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	d := testDevice(t, "file", sink, 10*time.Second)
	d.Config = dc
	// An interceptor, as the audit subsystem installs one: the linked
	// path must serve a broker that has it.
	b := NewBroker(BrokerConfig{Intercept: func(context.Context, *core.AuditEvent) { l.intercepted.Add(1) }})
	b.Add(d)
	t.Cleanup(func() { b.Close() })
	return b, l
}

// pathResolver resolves every path to one route whose handler calls serve.
type pathResolver struct {
	pure  []core.Operation
	serve func(req *core.Request)
}

func (r pathResolver) Resolve(_ context.Context, req *core.Request) (*core.Target, error) {
	return &core.Target{Found: true, SideEffectFree: r.pure, Serve: func(_ context.Context, req *core.Request) (*core.Response, error) {
		r.serve(req)
		return &core.Response{Data: map[string]any{"ok": true}}, nil
	}}, nil
}

type rootAuthn struct{}

func (rootAuthn) Authenticate(context.Context, *core.Request) (*core.Principal, error) {
	return &core.Principal{ClientToken: "root", Root: true, Policies: []string{"root"}}, nil
}

type allowAll struct{}

func (allowAll) Authorize(_ context.Context, req *core.Request) (*core.Decision, error) {
	return &core.Decision{Allowed: true, Operation: req.Operation}, nil
}

type unsealed struct{}

func (unsealed) Sealed() bool { return false }

func dispatcherFor(t *testing.T, b *Broker, r pathResolver) *core.Dispatcher {
	t.Helper()
	d, err := core.NewDispatcher(core.DispatcherConfig{Resolver: r, Authenticator: rootAuthn{}, Authorizer: allowAll{}, Auditor: b, Seal: unsealed{}})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestSideEffectRouteRunsOnlyAfterRequestEntryDurable: with the real file
// device, a handler of an operation with side effects (the default) never
// runs before its request entry is durable — checked inside the handler
// against the bytes fsynced so far, for many concurrent requests — while a
// side-effect-free operation of the same route is answered only once both
// its entries are durable.
func TestSideEffectRouteRunsOnlyAfterRequestEntryDurable(t *testing.T) {
	b, l := newDurableBroker(t)
	var early atomic.Int32
	var mu sync.Mutex
	ranRead := map[string]bool{}
	d := dispatcherFor(t, b, pathResolver{pure: []core.Operation{core.OpRead}, serve: func(req *core.Request) {
		if req.Operation == core.OpRead {
			mu.Lock()
			ranRead[req.ID] = true
			mu.Unlock()
			return
		}
		if !bytes.Contains(l.durablePrefix(t), []byte(`"id":"`+req.ID+`"`)) {
			early.Add(1)
		}
	}})
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			op := core.OpUpdate
			if i%2 == 1 {
				op = core.OpRead
			}
			req := &core.Request{ID: fmt.Sprintf("req-%02d", i), Operation: op, Path: "secret/data/x", ClientToken: "root"}
			if _, err := d.Handle(context.Background(), req); err != nil {
				errs <- err
				return
			}
			if op == core.OpRead {
				// Answered: request and response entries are both durable.
				if n := bytes.Count(l.durablePrefix(t), []byte(`"id":"`+req.ID+`"`)); n != 2 {
					errs <- fmt.Errorf("%s answered with %d of its 2 entries durable", req.ID, n)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := early.Load(); n != 0 {
		t.Fatalf("%d side-effecting handlers ran before their request entry was durable", n)
	}
	if len(ranRead) != 32 {
		t.Fatalf("%d side-effect-free handlers ran, want 32", len(ranRead))
	}
	if n := l.intercepted.Load(); n != 64 {
		t.Fatalf("the interceptor saw %d request events, want 64", n)
	}
	// The side-effect-free requests took the linked path (one durable
	// wait), not the fallback that waits for the request entry first.
	ev := &core.AuditEvent{Type: "request", Time: time.Now(), Request: &core.Request{ID: "probe", Operation: core.OpRead, Path: "secret/data/x"}}
	pair, err := b.LogRequestDeferred(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := pair.(*linkedPair); !ok {
		t.Fatalf("LogRequestDeferred with one durable file device returned %T, want the linked pair", pair)
	}
	if reqErr, respErr := pair.LogResponse(context.Background(), &core.AuditEvent{Type: "response", Time: time.Now(), Request: ev.Request}); reqErr != nil || respErr != nil {
		t.Fatal(reqErr, respErr)
	}
}

// TestSideEffectFreeRequestEntryFails: when the request entry of a
// side-effect-free operation is not written, the answer is refused as not
// executed and no response entry is written for it.
func TestSideEffectFreeRequestEntryFails(t *testing.T) {
	b, l := newDurableBroker(t)
	d := dispatcherFor(t, b, pathResolver{pure: []core.Operation{core.OpRead}, serve: func(*core.Request) {}})
	l.failW.Store(true)
	_, err := d.Handle(context.Background(), &core.Request{ID: "lost", Operation: core.OpRead, Path: "secret/data/x", ClientToken: "root"})
	if core.CodeOf(err) != core.CodeAuditRequest {
		t.Fatalf("err = %v (code %v), want a request-stage audit failure", err, core.CodeOf(err))
	}
	if _, err := d.Handle(context.Background(), &core.Request{ID: "next", Operation: core.OpRead, Path: "secret/data/x", ClientToken: "root"}); err != nil {
		t.Fatal(err)
	}
	log := l.durablePrefix(t)
	if bytes.Contains(log, []byte(`"id":"lost"`)) {
		t.Fatalf("the log holds an entry of the refused request:\n%s", log)
	}
	if n := bytes.Count(log, []byte(`"id":"next"`)); n != 2 {
		t.Fatalf("the next request has %d entries, want 2", n)
	}
}
