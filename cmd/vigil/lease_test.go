package main

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/cmd/vigil/wire"
	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/server"
	"github.com/vigilsec/vigil/core/server/servertest"
)

// leaseEngine is a minimal dynamic-secrets engine for the lease tests:
// reading creds/<role> issues a renewable secret with a 1h lease, and
// revocations are recorded so the tests can see the engine was called.
type leaseEngine struct {
	mu      sync.Mutex
	revoked []string
}

var (
	_ framework.Engine        = (*leaseEngine)(nil)
	_ framework.SecretRevoker = (*leaseEngine)(nil)
	_ framework.SecretRenewer = (*leaseEngine)(nil)
)

func (e *leaseEngine) Setup(context.Context, framework.Env) error { return nil }
func (e *leaseEngine) Close(context.Context) error                { return nil }

func (e *leaseEngine) Routes() []framework.Route {
	return []framework.Route{{
		Pattern: `creds/` + framework.GenericNameRegex("role"),
		Fields:  map[string]*framework.FieldSchema{"role": {Type: framework.TypeString}},
		Operations: map[core.Operation]framework.HandlerFunc{core.OpRead: func(_ context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
			return &core.Response{Data: map[string]any{"username": "u-" + d.String("role")},
				Secret: &core.Secret{TTL: time.Hour, Renewable: true}}, nil
		}},
	}}
}

func (e *leaseEngine) RevokeSecret(_ context.Context, _ *core.Request, s *core.Secret) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.revoked = append(e.revoked, s.LeaseID)
	return nil
}

func (e *leaseEngine) RenewSecret(_ context.Context, _ *core.Request, _ *core.Secret, inc time.Duration) (time.Duration, error) {
	return inc, nil
}

func (e *leaseEngine) revokedIDs() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.revoked...)
}

// mustLeaseServer starts a dev server with the lease engine at creds/.
func mustLeaseServer(t *testing.T) *leaseEngine {
	t.Helper()
	eng := &leaseEngine{}
	build := func(cfg *config.Config) (server.Options, error) {
		o, err := wire.Options(cfg)
		if err == nil {
			o.Engines["leasetest"] = func() framework.Engine { return eng }
		}
		return o, err
	}
	s := servertest.MustStart(t, build, servertest.Options{Dev: true})
	pointCLI(t, s)
	mustOK(t, "secrets", "enable", "-path=creds", "leasetest")
	return eng
}

func TestLeaseLookupRenewRevoke(t *testing.T) {
	eng := mustLeaseServer(t)

	out := mustOK(t, "read", "creds/creds/app")
	id := tableValue(t, out, "lease_id")
	if !strings.HasPrefix(id, "creds/creds/app/") || tableValue(t, out, "lease_duration") != "1h" || tableValue(t, out, "username") != "u-app" {
		t.Fatalf("leased read:\n%s", out)
	}

	look := mustOK(t, "lease", "lookup", id)
	if tableValue(t, look, "id") != id || tableValue(t, look, "renewable") != "true" {
		t.Fatalf("lookup:\n%s", look)
	}
	ttl, err := strconv.Atoi(mustOK(t, "lease", "lookup", "-field=ttl", id))
	if err != nil || ttl < 3590 || ttl > 3600 {
		t.Fatalf("lookup ttl %d %v", ttl, err)
	}

	out = mustOK(t, "lease", "renew", "-increment=2h", id)
	if tableValue(t, out, "lease_id") != id || tableValue(t, out, "lease_duration") != "2h" {
		t.Fatalf("renew:\n%s", out)
	}
	if ttl, _ := strconv.Atoi(mustOK(t, "lease", "lookup", "-field=ttl", id)); ttl < 7190 {
		t.Fatalf("ttl after renew %d", ttl)
	}

	if got := mustOK(t, "lease", "revoke", id); got != "Success! Revoked lease: "+id+"\n" {
		t.Fatalf("revoke: %q", got)
	}
	if r := eng.revokedIDs(); len(r) != 1 || r[0] != id {
		t.Fatalf("engine revocations: %v", r)
	}
	runCLI(t, "lease", "lookup", id).wantCode(t, 2, "Error looking up lease", "invalid lease")
	runCLI(t, "lease", "renew", id).wantCode(t, 2, "Error renewing", "invalid lease")
}

func TestLeaseRevokePrefix(t *testing.T) {
	eng := mustLeaseServer(t)
	var ids []string
	for _, role := range []string{"a", "a", "b"} {
		ids = append(ids, mustOK(t, "read", "-field=lease_id", "creds/creds/"+role))
	}
	if got := mustOK(t, "lease", "revoke", "-prefix", "creds/creds/a"); got != "Success! Revoked any leases with prefix: creds/creds/a\n" {
		t.Fatalf("revoke -prefix: %q", got)
	}
	if r := eng.revokedIDs(); len(r) != 2 {
		t.Fatalf("revoked %v, want the two a leases", r)
	}
	runCLI(t, "lease", "lookup", ids[0]).wantCode(t, 2)
	mustOK(t, "lease", "lookup", ids[2]) // b untouched

	r := runCLI(t, "lease", "revoke", "-prefix", "-force", "creds/")
	r.wantCode(t, 0, "Warning! Force-removing leases")
	runCLI(t, "lease", "lookup", ids[2]).wantCode(t, 2)

	runCLI(t, "lease", "revoke", "-force", "creds/").wantCode(t, 1, "Specifying -force requires also specifying -prefix")
	runCLI(t, "lease", "lookup").wantCode(t, 1, "Not enough arguments")
	runCLI(t, "lease", "renew", "-increment=soon", "x").wantCode(t, 1, "invalid value")
}
