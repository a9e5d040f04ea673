package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Scenario is one benchmark workload. Setup prepares a target through the
// Vault HTTP API (mounts, keys, roles, users, data) and returns the Plan
// that generates the load and undoes the setup.
type Scenario struct {
	Name    string
	Summary string
	Setup   func(ctx context.Context, env *Env) (*Plan, error)
}

// Env is what a scenario's setup gets.
type Env struct {
	// API talks to the target with an admin (root) token; its tag marks
	// the setup phase.
	API *API
	// Prefix makes mount paths unique to this run ("vbench-1a2b3c"), so
	// runs never collide with each other or with the target's own mounts.
	Prefix string
	// Connections is the number of workers that will send load.
	Connections int
	// PGURL is the PostgreSQL admin URL for db-creds ("" when unknown).
	PGURL string
}

// Plan is a set-up scenario on one target.
type Plan struct {
	// Next returns the request worker w sends next. It is called from
	// every worker at once and must be safe for that (per-worker state
	// belongs in w; shared state needs atomics).
	Next func(w *Worker) Request
	// Cleanup removes what Setup created (api carries the cleanup tag).
	Cleanup func(ctx context.Context, api *API) error
}

// SkipError says the target cannot run a scenario (it lacks an engine, or
// a service the scenario needs is not configured). It is reported, not
// treated as a failure.
type SkipError struct{ Reason string }

func (e *SkipError) Error() string { return "skipped: " + e.Reason }

// skipf returns a *SkipError.
func skipf(format string, args ...any) error { return &SkipError{Reason: fmt.Sprintf(format, args...)} }

// IsSkip reports whether err is a *SkipError and returns its reason.
func IsSkip(err error) (string, bool) {
	var se *SkipError
	if errors.As(err, &se) {
		return se.Reason, true
	}
	return "", false
}

var scenarios = map[string]*Scenario{}

func registerScenario(s *Scenario) { scenarios[s.Name] = s }

// scenarioOrder is the order scenarios run and are listed in.
var scenarioOrder = []string{"kv-read", "kv-write", "kv-mixed", "transit-encrypt", "transit-decrypt", "pki-issue", "db-creds", "login-userpass"}

// ScenarioOrder returns the list above (a copy: callers may change it).
func ScenarioOrder() []string { return slices.Clone(scenarioOrder) }

// Scenarios returns every scenario in scenarioOrder.
func Scenarios() []*Scenario {
	out := make([]*Scenario, 0, len(scenarios))
	for _, n := range scenarioOrder {
		if s, ok := scenarios[n]; ok {
			out = append(out, s)
		}
	}
	return out
}

// LookupScenarios resolves a list of names ("all" expands to every
// scenario); unknown names are an error listing the known ones.
func LookupScenarios(names []string) ([]*Scenario, error) {
	var out []*Scenario
	seen := map[string]bool{}
	for _, n := range names {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if n == "all" {
			for _, s := range Scenarios() {
				if !seen[s.Name] {
					seen[s.Name] = true
					out = append(out, s)
				}
			}
			continue
		}
		s, ok := scenarios[n]
		if !ok {
			known := make([]string, 0, len(scenarios))
			for k := range scenarios {
				known = append(known, k)
			}
			sort.Strings(known)
			return nil, fmt.Errorf("unknown scenario %q (known: %s, all)", n, strings.Join(known, ", "))
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no scenario given")
	}
	return out, nil
}

// mountSecrets enables a secrets engine at path. A target that does not
// know the engine type answers 400 (Vault: "plugin not found in the
// catalog"): that is a skip, not a failure.
func mountSecrets(ctx context.Context, api *API, path, typ string, options map[string]any) error {
	body := map[string]any{"type": typ}
	if options != nil {
		body["options"] = options
	}
	_, err := api.Do(ctx, "POST", "sys/mounts/"+path, body)
	return mountErr(err, "secrets engine", typ)
}

// enableAuth enables an auth method at path (same skip rule).
func enableAuth(ctx context.Context, api *API, path, typ string) error {
	_, err := api.Do(ctx, "POST", "sys/auth/"+path, map[string]any{"type": typ})
	return mountErr(err, "auth method", typ)
}

func mountErr(err error, what, typ string) error {
	if err == nil {
		return nil
	}
	var ae *APIError
	if errors.As(err, &ae) && (ae.Status == 400 || ae.Status == 404 || ae.Status == 405) {
		msg := strings.ToLower(strings.Join(ae.Errors, " "))
		if !strings.Contains(msg, "already in use") && !strings.Contains(msg, "existing mount") {
			return skipf("the target has no %q %s (%v)", typ, what, err)
		}
	}
	return fmt.Errorf("enable %s %q: %w", what, typ, err)
}

// unmount disables a secrets engine (its leases are revoked by the server).
func unmount(ctx context.Context, api *API, path string) error {
	_, err := api.Do(ctx, "DELETE", "sys/mounts/"+path, nil)
	return err
}

// retry calls f until it succeeds or d has passed (a fresh KV v2 mount on
// Vault answers errors while it upgrades).
func retry(ctx context.Context, d time.Duration, f func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// parallel runs f(0..n-1) on up to width goroutines and returns the first
// error.
func parallel(n, width int, f func(i int) error) error {
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
	)
	ch := make(chan int)
	for range min(width, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ch {
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := range n {
		ch <- i
	}
	close(ch)
	wg.Wait()
	return first
}

// mustJSON encodes a request body built by the harness itself.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("bench: encode request body: %v", err))
	}
	return b
}
