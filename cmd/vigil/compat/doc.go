// Package compat is the compatibility suite run by `make compat`: it drives
// a Vigil server (the built binary) with a real Vault-compatible CLI and
// agent — HashiCorp Vault's `vault` or OpenBao's `bao` — named by
// VIGIL_COMPAT_BIN. It runs the README's CLI commands (operator init and
// unseal, kv, policy, token, secrets, transit, pki, database, ssh, totp,
// auth, audit, lease), response wrapping (-wrap-ttl, unwrap, rewrap,
// lookup, cubbyhole) and a two-person control group, and an agent with
// AppRole auto-auth (also from a response-wrapped secret ID), templates for
// a KV v2 secret and a dynamic PostgreSQL credential, lease renewal,
// re-rendering and its API proxy.
//
// The tests are behind the "compat" build tag, so `go test ./...` and
// `make test` never run them: the project's own tests must pass on a
// machine that has only this repository.
package compat
