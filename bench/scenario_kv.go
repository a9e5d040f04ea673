package bench

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
)

// kvPool is how many secrets the KV scenarios write during setup; reads
// and overwrites pick one of them at random.
const kvPool = 256

func init() {
	registerScenario(&Scenario{Name: "kv-read", Summary: "KV v2 read of one of 256 existing secrets",
		Setup: func(ctx context.Context, env *Env) (*Plan, error) { return kvSetup(ctx, env, 0) }})
	registerScenario(&Scenario{Name: "kv-write", Summary: "KV v2 write: half new keys, half overwrites of existing secrets",
		Setup: func(ctx context.Context, env *Env) (*Plan, error) { return kvSetup(ctx, env, 100) }})
	registerScenario(&Scenario{Name: "kv-mixed", Summary: "KV v2: 90% reads, 10% writes (as kv-write)",
		Setup: func(ctx context.Context, env *Env) (*Plan, error) { return kvSetup(ctx, env, 10) }})
}

// kvBody is a secret of about 150 bytes: what an application credential
// typically weighs.
func kvBody(i int64) []byte {
	return mustJSON(map[string]any{"data": map[string]any{
		"username": fmt.Sprintf("app-%d", i),
		"password": fmt.Sprintf("%032x", uint64(i)*0x9e3779b97f4a7c15),
		"url":      "postgres://db.internal.example:5432/app",
		"note":     strings.Repeat("x", 48),
	}})
}

// kvSetup mounts a KV v2 engine, writes the pool of secrets and returns a
// plan that sends writePct% writes (half to new keys, half overwrites)
// and the rest reads.
func kvSetup(ctx context.Context, env *Env, writePct int) (*Plan, error) {
	mount := env.Prefix + "-kv"
	if err := mountSecrets(ctx, env.API, mount, "kv", map[string]any{"version": "2"}); err != nil {
		return nil, err
	}
	cleanup := func(ctx context.Context, api *API) error { return unmount(ctx, api, mount) }
	// A fresh KV v2 mount may refuse writes for a moment while it
	// upgrades (Vault); wait for the first write to go through.
	first := func() error {
		_, err := env.API.Do(ctx, "POST", mount+"/data/pool-0", kvBody(0))
		return err
	}
	if err := retry(ctx, 30*time.Second, first); err != nil {
		_ = cleanup(ctx, env.API)
		return nil, fmt.Errorf("kv: first write: %w", err)
	}
	err := parallel(kvPool-1, 16, func(i int) error {
		_, err := env.API.Do(ctx, "POST", fmt.Sprintf("%s/data/pool-%d", mount, i+1), kvBody(int64(i+1)))
		return err
	})
	if err != nil {
		_ = cleanup(ctx, env.API)
		return nil, fmt.Errorf("kv: write pool: %w", err)
	}
	bodies := make([][]byte, 64)
	for i := range bodies {
		bodies[i] = kvBody(int64(i) + 1000)
	}
	var fresh atomic.Int64
	next := func(w *Worker) Request {
		if writePct > 0 && (writePct >= 100 || w.Rand.IntN(100) < writePct) {
			body := bodies[w.Rand.IntN(len(bodies))]
			if w.N%2 == 0 {
				return Request{Method: "POST", Path: fmt.Sprintf("%s/data/new-%d", mount, fresh.Add(1)), Body: body}
			}
			return Request{Method: "POST", Path: fmt.Sprintf("%s/data/pool-%d", mount, w.Rand.IntN(kvPool)), Body: body}
		}
		return Request{Method: "GET", Path: fmt.Sprintf("%s/data/pool-%d", mount, w.Rand.IntN(kvPool))}
	}
	return &Plan{Next: next, Cleanup: cleanup}, nil
}
