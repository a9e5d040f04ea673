package bench

import (
	"context"
	"fmt"
)

// loginUsers is the most users login-userpass creates (one per worker up
// to this many; workers share them beyond).
const loginUsers = 16

func init() {
	registerScenario(&Scenario{Name: "login-userpass",
		Summary: "userpass login (password check and a new 1h service token per request)",
		Setup:   loginSetup})
}

func loginSetup(ctx context.Context, env *Env) (*Plan, error) {
	mount := env.Prefix + "-userpass"
	if err := enableAuth(ctx, env.API, mount, "userpass"); err != nil {
		return nil, err
	}
	cleanup := func(ctx context.Context, api *API) error {
		_, err := api.Do(ctx, "DELETE", "sys/auth/"+mount, nil)
		return err
	}
	n := min(max(env.Connections, 1), loginUsers)
	err := parallel(n, 4, func(i int) error {
		_, err := env.API.Do(ctx, "POST", fmt.Sprintf("auth/%s/users/u%d", mount, i), map[string]any{
			"password": fmt.Sprintf("bench-password-%d", i), "token_ttl": "1h", "token_policies": "default",
		})
		return err
	})
	if err != nil {
		_ = cleanup(ctx, env.API)
		return nil, fmt.Errorf("login-userpass: create users: %w", err)
	}
	bodies := make([][]byte, n)
	for i := range bodies {
		bodies[i] = mustJSON(map[string]any{"password": fmt.Sprintf("bench-password-%d", i)})
	}
	next := func(w *Worker) Request {
		u := w.ID % n
		return Request{Method: "POST", Path: fmt.Sprintf("auth/%s/login/u%d", mount, u), Body: bodies[u], NoToken: true}
	}
	return &Plan{Next: next, Cleanup: cleanup}, nil
}
