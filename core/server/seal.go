package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/seal"
)

// buildSeals turns the config's seal blocks into seal options: at most one
// enabled block (the auto seal; none means Shamir) and at most one with
// disabled = "true" (the seal a migration moves away from).
func buildSeals(ctx context.Context, blocks []config.Block, factories map[string]seal.Factory) ([]seal.Option, []seal.Seal, error) {
	var opts []seal.Option
	var built []seal.Seal
	var enabled, disabled *config.Block
	for i := range blocks {
		b := &blocks[i]
		vals := map[string]string{}
		for k, v := range b.Options {
			vals[k] = v.Value
		}
		o := seal.Options{Type: b.Type, Values: vals, Where: fmt.Sprintf("%s:%d", b.File, b.Line)}
		off, err := o.Bool("disabled", false)
		if err != nil {
			return nil, nil, err
		}
		if b.Type == seal.Type {
			return nil, nil, o.Errorf("the Shamir seal needs no block: remove it (migrating to Shamir: keep only the old seal's block, with disabled = \"true\")")
		}
		f, ok := factories[b.Type]
		if !ok {
			known := make([]string, 0, len(factories))
			for k := range factories {
				known = append(known, k)
			}
			return nil, nil, o.Errorf("unknown seal type (known: %v)", known)
		}
		switch {
		case off && disabled != nil:
			return nil, nil, o.Errorf("only one seal block may be disabled (also %s:%d)", disabled.File, disabled.Line)
		case !off && enabled != nil:
			return nil, nil, o.Errorf("only one seal may be enabled (also %s:%d); mark the old one disabled = \"true\" to migrate", enabled.File, enabled.Line)
		}
		s, err := f(ctx, o)
		if err != nil {
			return nil, nil, err
		}
		built = append(built, s)
		if off {
			disabled = b
			opts = append(opts, seal.WithDisabledSeal(s))
		} else {
			enabled = b
			opts = append(opts, seal.WithAutoSeal(s))
		}
	}
	if enabled != nil && disabled != nil && enabled.Type == disabled.Type {
		return nil, nil, fmt.Errorf("%s:%d: seal %q is both enabled and disabled", disabled.File, disabled.Line, disabled.Type)
	}
	return opts, built, nil
}

// startAutoUnseal runs the auto-unseal loop when an auto seal is configured:
// it unwraps the root key and unseals, retrying with backoff while the
// seal's backend is unreachable (the error is in sys/seal-status and the
// log), and stops once the server has been unsealed by any path — so a
// server sealed on purpose (sys/seal) stays sealed until restarted.
func (s *Server) startAutoUnseal() {
	if !s.seal.Auto() {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.stopAuto = cancel
	s.autoDone.Add(1)
	go func() {
		defer s.autoDone.Done()
		start := s.now()
		wait := 200 * time.Millisecond
		var lastMsg string
		for {
			err := s.autoUnsealOnce(ctx)
			switch {
			case err == nil:
				return
			case errors.Is(err, core.ErrNotInitialized):
				wait = time.Second // waiting for `vigil operator init`
			case errors.Is(err, seal.ErrMigrationPending):
				s.log.Warn("seal migration pending: unseal with the old seal's keys and -migrate", "seal", s.seal.ConfiguredType())
				return
			default:
				if msg := err.Error(); msg != lastMsg {
					s.log.Error("auto-unseal failed; retrying", "seal", s.seal.ConfiguredType(), "error", err)
					lastMsg = msg
				}
				wait = min(wait*2, 5*time.Second)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			_ = start
		}
	}()
}

// autoUnsealOnce makes one auto-unseal attempt; nil once there is nothing
// left to do.
func (s *Server) autoUnsealOnce(ctx context.Context) error {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	if s.autoUnsealed {
		return nil
	}
	t0 := time.Now()
	if err := s.seal.AutoUnseal(ctx); err != nil {
		return err
	}
	if err := s.unsealedLocked(ctx); err != nil {
		return err
	}
	s.log.Info("auto-unsealed", "seal", s.seal.ConfiguredType(), "took", time.Since(t0))
	return nil
}

func (s *Server) stopAutoUnseal() {
	if s.stopAuto != nil {
		s.stopAuto()
		s.autoDone.Wait()
	}
}

// SealBackends reports the health of the configured seals' backends, live.
func (s *Server) SealBackends(ctx context.Context) []seal.BackendStatus {
	return s.seal.CheckHealth(ctx)
}
