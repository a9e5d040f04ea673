package server

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/vigilsec/vigil/core/router"
	"github.com/vigilsec/vigil/core/seal"
	"github.com/vigilsec/vigil/core/seal/custody"
	"github.com/vigilsec/vigil/core/token"
)

// DevInfo is what dev mode prints at start.
type DevInfo struct {
	RootToken string `json:"root_token"`
	UnsealKey string `json:"unseal_key"`
	Fresh     bool   `json:"-"`
}

const devKeyFile = "dev-unseal.json"

// DevBootstrap initialises (first start) or unseals (later starts) a dev
// server. The unseal key and root token are kept in the data folder — dev
// mode only: never for real secrets. On first start secret/ is mounted as
// KV version 2.
func (s *Server) DevBootstrap(ctx context.Context, rootTokenID string) (*DevInfo, error) {
	if s.seal.Auto() {
		return nil, fmt.Errorf("dev: dev mode uses the Shamir seal with a stored key; remove the seal %q block or run without -dev", s.seal.ConfiguredType())
	}
	path := filepath.Join(s.DataDir(), devKeyFile)
	init, err := s.barrier.Initialized(ctx)
	if err != nil {
		return nil, err
	}
	if !init {
		// A dev server is a single-node cluster of its own.
		if err := s.raft.Bootstrap(ctx); err != nil {
			return nil, fmt.Errorf("dev: %w", err)
		}
		s.stateMu.Lock()
		res, err := s.seal.Init(ctx, seal.InitParams{SecretShares: 1, SecretThreshold: 1})
		s.stateMu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("dev: init: %w", err)
		}
		if err := s.UnsealWithKey(ctx, res.UnsealKey); err != nil {
			return nil, fmt.Errorf("dev: unseal: %w", err)
		}
		if err := custody.Put(ctx, s.barrier, res.Shares); err != nil {
			return nil, fmt.Errorf("dev: %w", err)
		}
		raw, _, err := s.tokens.Create(ctx, token.CreateParams{ID: rootTokenID, Policies: []string{"root"}, DisplayName: "root", NoExpiry: true, Orphan: true, Path: "auth/token/root"})
		if err != nil {
			return nil, fmt.Errorf("dev: root token: %w", err)
		}
		if err := s.router.Mount(ctx, &router.MountEntry{Path: "secret", Type: "kv", Options: map[string]string{"version": "2"}, Description: "key/value secret storage"}); err != nil {
			return nil, fmt.Errorf("dev: mount secret/: %w", err)
		}
		info := &DevInfo{RootToken: raw, UnsealKey: base64.StdEncoding.EncodeToString(res.UnsealKey), Fresh: true}
		b, _ := json.MarshalIndent(info, "", "  ")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return nil, fmt.Errorf("dev: save unseal key: %w", err)
		}
		return info, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("dev: %s is initialised but %s is missing; unseal it with `vigil operator unseal` or use a fresh -dev-data-dir", s.DataDir(), devKeyFile)
		}
		return nil, err
	}
	var info DevInfo
	if err := json.Unmarshal(b, &info); err != nil {
		return nil, fmt.Errorf("dev: %s: %w", path, err)
	}
	key, err := base64.StdEncoding.DecodeString(info.UnsealKey)
	if err != nil {
		return nil, fmt.Errorf("dev: %s: bad unseal key: %w", path, err)
	}
	if err := s.UnsealWithKey(ctx, key); err != nil {
		return nil, fmt.Errorf("dev: unseal: %w", err)
	}
	if rootTokenID != "" && rootTokenID != info.RootToken {
		if e, err := s.tokens.Lookup(ctx, rootTokenID); err != nil {
			return nil, err
		} else if e == nil {
			if _, _, err := s.tokens.Create(ctx, token.CreateParams{ID: rootTokenID, Policies: []string{"root"}, DisplayName: "root", NoExpiry: true, Orphan: true, Path: "auth/token/root"}); err != nil {
				return nil, fmt.Errorf("dev: root token: %w", err)
			}
		}
		info.RootToken = rootTokenID
		b, _ := json.MarshalIndent(info, "", "  ")
		_ = os.WriteFile(path, b, 0o600)
	}
	return &info, nil
}
