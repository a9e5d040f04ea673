package seal

import (
	"context"
	"sync"
	"time"
)

// health remembers the outcome of the last call to an auto seal's backend.
type health struct {
	mu        sync.Mutex
	typ       string
	err       error
	since     time.Time // when the current state began
	lastCheck time.Time
}

func (h *health) observe(typ string, err error, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if (err == nil) != (h.err == nil) || h.since.IsZero() {
		h.since = now
	}
	h.typ, h.err, h.lastCheck = typ, err, now
}

func (h *health) message() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err == nil {
		return ""
	}
	return h.err.Error()
}

// BackendStatus is one seal backend's health, in the shape of Vault's
// sys/seal-backend-status.
type BackendStatus struct {
	Name           string    `json:"name"`
	Healthy        bool      `json:"healthy"`
	UnhealthySince time.Time `json:"unhealthy_since,omitzero"`
	LastCheck      time.Time `json:"last_seen,omitzero"`
	Error          string    `json:"error,omitempty"`
}

// CheckHealth asks the configured seal's backend (and the disabled one,
// during a migration) whether it answers, records the outcome, and returns
// one status per backend. The Shamir seal reports healthy.
func (m *Manager) CheckHealth(ctx context.Context) []BackendStatus {
	seals := []Seal{}
	if m.auto != nil {
		seals = append(seals, m.auto)
	}
	if m.from != nil {
		seals = append(seals, m.from)
	}
	if len(seals) == 0 {
		return []BackendStatus{{Name: Type, Healthy: true}}
	}
	var out []BackendStatus
	for i, s := range seals {
		err := s.Health(ctx)
		if err != nil {
			err = sealError(s.Type(), "health check", err)
		}
		now := m.now()
		if i == 0 {
			m.health.observe(s.Type(), err, now)
		}
		st := BackendStatus{Name: s.Type(), Healthy: err == nil, LastCheck: now.UTC()}
		if err != nil {
			st.Error = err.Error()
			if i == 0 {
				m.health.mu.Lock()
				st.UnhealthySince = m.health.since.UTC()
				m.health.mu.Unlock()
			} else {
				st.UnhealthySince = now.UTC()
			}
		}
		out = append(out, st)
	}
	return out
}
