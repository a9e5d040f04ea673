package bench

import (
	"context"
	"encoding/base64"
	"fmt"
)

func init() {
	registerScenario(&Scenario{Name: "transit-encrypt", Summary: "transit encrypt of 64 bytes with an aes256-gcm96 key",
		Setup: func(ctx context.Context, env *Env) (*Plan, error) { return transitSetup(ctx, env, false) }})
	registerScenario(&Scenario{Name: "transit-decrypt", Summary: "transit decrypt of one of 256 ciphertexts (64-byte plaintexts, aes256-gcm96)",
		Setup: func(ctx context.Context, env *Env) (*Plan, error) { return transitSetup(ctx, env, true) }})
}

// transitPlaintexts returns n distinct 64-byte plaintexts, base64-encoded.
func transitPlaintexts(n int) []string {
	out := make([]string, n)
	for i := range out {
		b := make([]byte, 64)
		for j := range b {
			b[j] = byte(i*131 + j*7)
		}
		out[i] = base64.StdEncoding.EncodeToString(b)
	}
	return out
}

func transitSetup(ctx context.Context, env *Env, decrypt bool) (*Plan, error) {
	mount := env.Prefix + "-transit"
	if err := mountSecrets(ctx, env.API, mount, "transit", nil); err != nil {
		return nil, err
	}
	cleanup := func(ctx context.Context, api *API) error { return unmount(ctx, api, mount) }
	if _, err := env.API.Do(ctx, "POST", mount+"/keys/bench", map[string]any{"type": "aes256-gcm96"}); err != nil {
		_ = cleanup(ctx, env.API)
		return nil, fmt.Errorf("transit: create key: %w", err)
	}
	pts := transitPlaintexts(256)
	bodies := make([][]byte, len(pts))
	if !decrypt {
		for i, p := range pts {
			bodies[i] = mustJSON(map[string]any{"plaintext": p})
		}
	} else {
		err := parallel(len(pts), 16, func(i int) error {
			m, err := env.API.Do(ctx, "POST", mount+"/encrypt/bench", map[string]any{"plaintext": pts[i]})
			if err != nil {
				return err
			}
			ct, _ := data(m)["ciphertext"].(string)
			if ct == "" {
				return fmt.Errorf("transit: encrypt answered no ciphertext")
			}
			bodies[i] = mustJSON(map[string]any{"ciphertext": ct})
			return nil
		})
		if err != nil {
			_ = cleanup(ctx, env.API)
			return nil, fmt.Errorf("transit: encrypt the ciphertext pool: %w", err)
		}
	}
	op := "encrypt"
	if decrypt {
		op = "decrypt"
	}
	path := mount + "/" + op + "/bench"
	next := func(w *Worker) Request {
		return Request{Method: "POST", Path: path, Body: bodies[w.Rand.IntN(len(bodies))]}
	}
	return &Plan{Next: next, Cleanup: cleanup}, nil
}
