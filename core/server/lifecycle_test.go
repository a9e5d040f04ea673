package server_test

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"

	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/server"
	"github.com/vigilsec/vigil/core/server/servertest"
)

// recorder is a subsystem that records its lifecycle calls in a shared log.
type recorder struct {
	name string
	log  *events
}

type events struct {
	mu sync.Mutex
	ev []string
}

func (e *events) add(s string) { e.mu.Lock(); e.ev = append(e.ev, s); e.mu.Unlock() }
func (e *events) take() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := e.ev
	e.ev = nil
	return out
}

func (r recorder) Name() string                   { return r.name }
func (r recorder) Unsealed(context.Context) error { r.log.add("start " + r.name); return nil }
func (r recorder) Sealing(context.Context)        { r.log.add("stop " + r.name) }

// TestSubsystemOrder holds the lifecycle contract: Provision and Unsealed
// run in list order, Sealing in reverse order.
func TestSubsystemOrder(t *testing.T) {
	log := &events{}
	var plugs []server.Plug
	for _, n := range []string{"a", "b", "c"} {
		r := recorder{name: n, log: log}
		plugs = append(plugs, server.Plug{Subsystem: r, Provision: func(*server.Host) error { log.add("provision " + n); return nil }})
	}
	build := func(cfg *config.Config) (server.Options, error) {
		return server.Options{Config: cfg, Subsystems: plugs}, nil
	}
	s := servertest.MustStart(t, build, servertest.Options{})
	if got, want := log.take(), []string{"provision a", "provision b", "provision c", "start a", "start b", "start c"}; !slices.Equal(got, want) {
		t.Fatalf("start: %q, want %q", got, want)
	}
	if err := s.Seal(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := log.take(), []string{"stop c", "stop b", "stop a"}; !slices.Equal(got, want) {
		t.Fatalf("seal: %q, want %q", got, want)
	}
}

// TestPlugNeedsProvision refuses a plug without its Provision.
func TestPlugNeedsProvision(t *testing.T) {
	cfg := &config.Config{Storage: &config.Storage{Path: t.TempDir(), NodeID: "n1"}}
	_, err := server.New(server.Options{Config: cfg, Logger: slog.New(slog.DiscardHandler), Subsystems: []server.Plug{{Subsystem: recorder{name: "x", log: &events{}}}}})
	if err == nil {
		t.Fatal("a plug without Provision was accepted")
	}
}
