package bench

import (
	"context"
	"fmt"
)

func init() {
	registerScenario(&Scenario{Name: "pki-issue",
		Summary: "PKI issue of a leaf certificate (EC P-256, 1h) from an internal root; role defaults otherwise (certificates stored)",
		Setup:   pkiSetup})
}

func pkiSetup(ctx context.Context, env *Env) (*Plan, error) {
	mount := env.Prefix + "-pki"
	if err := mountSecrets(ctx, env.API, mount, "pki", nil); err != nil {
		return nil, err
	}
	cleanup := func(ctx context.Context, api *API) error { return unmount(ctx, api, mount) }
	fail := func(step string, err error) (*Plan, error) {
		_ = cleanup(ctx, env.API)
		return nil, fmt.Errorf("pki: %s: %w", step, err)
	}
	if _, err := env.API.Do(ctx, "POST", "sys/mounts/"+mount+"/tune", map[string]any{"max_lease_ttl": "87600h"}); err != nil {
		return fail("tune", err)
	}
	if _, err := env.API.Do(ctx, "POST", mount+"/root/generate/internal", map[string]any{
		"common_name": "vigil-bench root", "ttl": "87600h", "key_type": "ec", "key_bits": 256,
	}); err != nil {
		return fail("generate root", err)
	}
	if _, err := env.API.Do(ctx, "POST", mount+"/roles/bench", map[string]any{
		"allowed_domains": "bench.example", "allow_subdomains": true,
		"key_type": "ec", "key_bits": 256, "ttl": "1h", "max_ttl": "24h",
	}); err != nil {
		return fail("create role", err)
	}
	path := mount + "/issue/bench"
	next := func(w *Worker) Request {
		return Request{Method: "POST", Path: path,
			Body: mustJSON(map[string]any{"common_name": fmt.Sprintf("w%d-%d.bench.example", w.ID, w.N), "ttl": "1h"})}
	}
	return &Plan{Next: next, Cleanup: cleanup}, nil
}
