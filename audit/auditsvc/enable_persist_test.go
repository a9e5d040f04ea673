package auditsvc

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/vigilsec/vigil/audit"
	"github.com/vigilsec/vigil/audit/diskwatch"
	"github.com/vigilsec/vigil/core/storage"
)

// failingPuts is a storage whose Put fails for one key.
type failingPuts struct {
	*storage.Memory
	key string
}

var errDiskGone = errors.New("storage: write failed")

func (f failingPuts) Put(ctx context.Context, key string, v []byte) error {
	if key == f.key {
		return errDiskGone
	}
	return f.Memory.Put(ctx, key, v)
}

// mustAPISubsystem is an unsealed subsystem that accepts API changes and
// persists into s.
func mustAPISubsystem(tb testing.TB, s storage.Storage) *Subsystem {
	tb.Helper()
	log := slog.New(slog.DiscardHandler)
	a := NewSubsystem(Options{Stdout: io.Discard})
	a.log, a.now, a.nodeID = log, nil, "node1"
	a.settings = Settings{AllowAPIChanges: true}
	a.st = store{s: s}
	a.watch = diskwatch.New(diskwatch.Config{Logger: log})
	a.broker = audit.NewBroker(audit.BrokerConfig{Logger: log})
	a.unsealed.Store(true)
	return a
}

// A failure to persist an API-enabled device, or the marker that makes
// audit required after a restart, must fail the enable and leave nothing
// enabled: an enable reported as successful but forgotten at the next
// unseal would turn audit off silently.
func TestEnablePersistFailure(t *testing.T) {
	for _, key := range []string{keyDevices, keyEverEnabled} {
		t.Run(key, func(t *testing.T) {
			mem := storage.NewMemory()
			a := mustAPISubsystem(t, failingPuts{Memory: mem, key: key})
			err := a.Enable(context.Background(), nil, "out", audit.TypeStdout, "", nil, false)
			if !errors.Is(err, errDiskGone) {
				t.Fatalf("Enable with a failing write of %s = %v, want %v", key, err, errDiskGone)
			}
			if d := a.broker.Device("out"); d != nil {
				t.Fatal("the device is enabled although it was not persisted")
			}
			if b, _ := mem.Get(context.Background(), keySaltPrefix+"out"); b != nil {
				t.Fatal("the salt of the device that failed to enable was left behind")
			}
		})
	}
	t.Run("ok", func(t *testing.T) {
		mem := storage.NewMemory()
		a := mustAPISubsystem(t, mem)
		if err := a.Enable(context.Background(), nil, "out", audit.TypeStdout, "", nil, false); err != nil {
			t.Fatal(err)
		}
		ever, err := a.st.everEnabled(context.Background())
		if err != nil || !ever {
			t.Fatalf("everEnabled = %v, %v; want true", ever, err)
		}
		devs, err := a.st.devices(context.Background())
		if err != nil || devs["out"].Type != audit.TypeStdout {
			t.Fatalf("persisted devices = %v, %v", devs, err)
		}
	})
}
