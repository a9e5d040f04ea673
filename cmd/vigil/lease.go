package main

// `vigil lease lookup|renew|revoke`: the sys/leases/ API for the leases of
// dynamic secrets.

import (
	"fmt"
	"strings"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
)

func init() {
	registerGroup("lease", "Look up, renew and revoke the leases of dynamic secrets")
	register(&command{name: "lease lookup", synopsis: "Show a lease's issue time, expiry and TTL", run: runLeaseLookup})
	register(&command{name: "lease renew", synopsis: "Renew a lease", run: runLeaseRenew})
	register(&command{name: "lease revoke", synopsis: "Revoke a lease, or every lease under a prefix", run: runLeaseRevoke})
}

// runLeaseLookup is `vigil lease lookup ID`.
func runLeaseLookup(args []string) int {
	var cf clientFlags
	fs := newFlags("lease lookup", &cf)
	setUsage(fs, "lease lookup [options] ID", `
Shows a lease: when it was issued, when it expires, its TTL and whether it
is renewable.

    $ vigil lease lookup database/creds/app/2f6a614c...`)
	pos, code, ok := cf.parse(fs, args, 1, 1)
	if !ok {
		return code
	}
	client, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	id := strings.TrimSpace(pos[0])
	s, err := client.Sys().Lookup(id)
	if err != nil {
		return apiError("looking up lease "+id, err)
	}
	return cf.printSecret(s)
}

// runLeaseRenew is `vigil lease renew [-increment=D] ID`.
func runLeaseRenew(args []string) int {
	var cf clientFlags
	fs := newFlags("lease renew", &cf)
	setUsage(fs, "lease renew [options] ID", `
Renews a lease, asking for -increment more time (the engine and the mount's
max TTL may grant less).

    $ vigil lease renew -increment=1h database/creds/app/2f6a614c...`)
	var inc durationFlag
	fs.Var(&inc, "increment", "requested extension (default: the lease's TTL)")
	fs.Var(&inc, "i", "shorthand for -increment")
	pos, code, ok := cf.parse(fs, args, 1, 1)
	if !ok {
		return code
	}
	client, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	id := strings.TrimSpace(pos[0])
	s, err := client.Sys().Renew(id, int(inc.d/time.Second))
	if err != nil {
		return apiError("renewing "+id, err)
	}
	return cf.printSecret(s)
}

// runLeaseRevoke is `vigil lease revoke [-prefix] [-force] [-sync] ID`.
func runLeaseRevoke(args []string) int {
	var cf clientFlags
	fs := newFlags("lease revoke", &cf)
	setUsage(fs, "lease revoke [options] ID", `
Revokes a lease: the engine destroys the secret, then the lease is removed.
With -prefix, every lease whose ID starts with ID is revoked. With -prefix
and -force, leases whose revocation fails are removed anyway — the secrets
may then outlive their leases in the backend, so use it only for secrets
known to be gone.

    $ vigil lease revoke database/creds/app/2f6a614c...
    $ vigil lease revoke -prefix database/creds/app/`)
	prefix := fs.Bool("prefix", false, "revoke every lease under ID as a prefix")
	var force bool
	fs.BoolVar(&force, "force", false, "with -prefix: remove leases even when the engine fails to revoke them")
	fs.BoolVar(&force, "f", false, "shorthand for -force")
	sync := fs.Bool("sync", true, "wait for the revocation to finish")
	pos, code, ok := parseCmd(fs, args)
	if !ok {
		return code
	}
	if c := wantArgs(pos, 1, 1); c != 0 {
		return c
	}
	if force && !*prefix {
		return usageError("Specifying -force requires also specifying -prefix")
	}
	client, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	id := strings.TrimSpace(pos[0])
	opts := &vaultapi.RevokeOptions{LeaseID: id, Force: force, Prefix: *prefix, Sync: *sync}
	switch {
	case force:
		fmt.Fprintln(stderr, "Warning! Force-removing leases can leave secrets alive in the engine's backend.")
		if err := client.Sys().RevokeWithOptions(opts); err != nil {
			return apiError("force revoking leases with prefix "+id, err)
		}
		fmt.Fprintf(stdout, "Success! Force revoked any leases with prefix: %s\n", id)
	case *prefix:
		if err := client.Sys().RevokeWithOptions(opts); err != nil {
			return apiError("revoking leases with prefix "+id, err)
		}
		if *sync {
			fmt.Fprintf(stdout, "Success! Revoked any leases with prefix: %s\n", id)
		} else {
			fmt.Fprintln(stdout, "All revocation operations queued successfully!")
		}
	default:
		if err := client.Sys().RevokeWithOptions(opts); err != nil {
			return apiError("revoking lease "+id, err)
		}
		if *sync {
			fmt.Fprintf(stdout, "Success! Revoked lease: %s\n", id)
		} else {
			fmt.Fprintln(stdout, "All revocation operations queued successfully!")
		}
	}
	return 0
}
