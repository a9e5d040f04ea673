package main

// `vigil token create|lookup|renew|revoke`: the auth/token/ API.

import (
	"fmt"
	"strings"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
)

func init() {
	registerGroup("token", "Create, look up, renew and revoke tokens")
	register(&command{name: "token create", synopsis: "Create a token", run: runTokenCreate})
	register(&command{name: "token lookup", synopsis: "Show a token's properties (default: your own)", run: runTokenLookup})
	register(&command{name: "token renew", synopsis: "Renew a token's lease (default: your own)", run: runTokenRenew})
	register(&command{name: "token revoke", synopsis: "Revoke a token and its children", run: runTokenRevoke})
}

// durString renders a duration flag for the API ("" when unset).
func durString(f durationFlag) string {
	if !f.set {
		return ""
	}
	return fmt.Sprintf("%ds", int64(f.d/time.Second))
}

// runTokenCreate is `vigil token create [-policy=P...] [-ttl=D] ...`.
func runTokenCreate(args []string) int {
	var cf clientFlags
	fs := newFlags("token create", &cf)
	setUsage(fs, "token create [options]", `
Creates a token as a child of the calling token (or an orphan with
-orphan). Without -policy the child inherits the caller's policies. Every
token has a TTL: without -ttl the server's default applies.

    $ vigil token create -policy=app -ttl=1h
    $ vigil token create -orphan -period=24h -display-name=ci`)
	var policies stringSliceFlag
	fs.Var(&policies, "policy", "policy to attach (repeatable, or comma-separated)")
	var meta kvFlag
	fs.Var(&meta, "metadata", "K=V metadata to attach (repeatable)")
	var ttl, explicitMax, period durationFlag
	fs.Var(&ttl, "ttl", `initial TTL, e.g. "30m", "1h" (default: the server's)`)
	fs.Var(&explicitMax, "explicit-max-ttl", "hard limit the token can never be renewed past")
	fs.Var(&period, "period", "create a periodic token: each renewal resets the TTL to this period")
	renewable := fs.Bool("renewable", true, "allow the token to be renewed up to its max TTL")
	orphan := fs.Bool("orphan", false, "create the token with no parent (root/sudo only)")
	noDefault := fs.Bool("no-default-policy", false, `do not attach the "default" policy`)
	var uses int
	fs.IntVar(&uses, "use-limit", 0, "number of uses after which the token is revoked (0: unlimited)")
	fs.IntVar(&uses, "num-uses", 0, "alias of -use-limit")
	id := fs.String("id", "", "the token's value (root only; default: random)")
	displayName := fs.String("display-name", "", "name to associate with the token")
	typ := fs.String("type", "service", `token type: "service" or "batch"`)
	role := fs.String("role", "", "token role to create the token against")
	entityAlias := fs.String("entity-alias", "", "entity alias to associate with the token")
	_, code, ok := cf.parse(fs, args, 0, 0)
	if !ok {
		return code
	}
	if *typ == "batch" {
		*renewable = false
	}
	req := &vaultapi.TokenCreateRequest{
		ID: *id, Metadata: meta, TTL: durString(ttl), ExplicitMaxTTL: durString(explicitMax),
		Period: durString(period), NoDefaultPolicy: *noDefault, DisplayName: *displayName, NumUses: uses,
		Renewable: renewable, Type: *typ, EntityAlias: *entityAlias,
	}
	for _, p := range policies {
		for _, s := range strings.Split(p, ",") {
			if s = strings.TrimSpace(s); s != "" {
				req.Policies = append(req.Policies, s)
			}
		}
	}
	client, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	var s *vaultapi.Secret
	switch {
	case *role != "":
		s, err = client.Auth().Token().CreateWithRole(req, *role)
	case *orphan:
		s, err = client.Auth().Token().CreateOrphan(req)
	default:
		s, err = client.Auth().Token().Create(req)
	}
	if err != nil {
		return apiError("creating token", err)
	}
	return cf.printSecret(s)
}

// runTokenLookup is `vigil token lookup [-accessor] [TOKEN|ACCESSOR]`.
func runTokenLookup(args []string) int {
	var cf clientFlags
	fs := newFlags("token lookup", &cf)
	setUsage(fs, "token lookup [options] [TOKEN | ACCESSOR]", `
Shows a token's properties: policies, TTL, uses, metadata. Without an
argument it looks up the calling token.

    $ vigil token lookup
    $ vigil token lookup hvs.XXXX
    $ vigil token lookup -accessor ACCESSOR`)
	accessor := fs.Bool("accessor", false, "the argument is an accessor, not a token")
	pos, code, ok := parseCmd(fs, args)
	if !ok {
		return code
	}
	if c := wantArgs(pos, 0, 1); c != 0 {
		return c
	}
	if *accessor && len(pos) == 0 {
		return usageError("Not enough arguments with -accessor (expected 1, got 0)")
	}
	if c := cf.checkFormat(); c != 0 {
		return c
	}
	client, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	var s *vaultapi.Secret
	switch {
	case len(pos) == 0:
		s, err = client.Auth().Token().LookupSelf()
	case *accessor:
		s, err = client.Auth().Token().LookupAccessor(strings.TrimSpace(pos[0]))
	default:
		s, err = client.Auth().Token().Lookup(strings.TrimSpace(pos[0]))
	}
	if err != nil {
		return apiError("looking up token", err)
	}
	return cf.printSecret(s)
}

// runTokenRenew is `vigil token renew [-increment=D] [-accessor] [TOKEN]`.
func runTokenRenew(args []string) int {
	var cf clientFlags
	fs := newFlags("token renew", &cf)
	setUsage(fs, "token renew [options] [TOKEN | ACCESSOR]", `
Renews a token's lease, up to its max TTL. Without an argument it renews
the calling token.

    $ vigil token renew
    $ vigil token renew -increment=30m hvs.XXXX`)
	var inc durationFlag
	fs.Var(&inc, "increment", "requested extension of the TTL (default: the token's TTL)")
	fs.Var(&inc, "i", "shorthand for -increment")
	accessor := fs.Bool("accessor", false, "the argument is an accessor, not a token")
	pos, code, ok := parseCmd(fs, args)
	if !ok {
		return code
	}
	if c := wantArgs(pos, 0, 1); c != 0 {
		return c
	}
	if *accessor && len(pos) == 0 {
		return usageError("Not enough arguments with -accessor (expected 1, got 0)")
	}
	if c := cf.checkFormat(); c != 0 {
		return c
	}
	client, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	secs := int(inc.d / time.Second)
	var s *vaultapi.Secret
	switch {
	case len(pos) == 0:
		s, err = client.Auth().Token().RenewSelf(secs)
	case *accessor:
		s, err = client.Auth().Token().RenewAccessor(strings.TrimSpace(pos[0]), secs)
	default:
		s, err = client.Auth().Token().Renew(strings.TrimSpace(pos[0]), secs)
	}
	if err != nil {
		return apiError("renewing token", err)
	}
	return cf.printSecret(s)
}

// runTokenRevoke is `vigil token revoke [-self] [-accessor] [-mode=orphan|path] [TOKEN]`.
func runTokenRevoke(args []string) int {
	var cf clientFlags
	fs := newFlags("token revoke", &cf)
	setUsage(fs, "token revoke [options] [TOKEN | ACCESSOR]", `
Revokes a token and, by default, all its children and their leases.
-mode=orphan revokes only the token, making its children orphans;
-mode=path revokes every token created under the given auth path prefix.

    $ vigil token revoke hvs.XXXX
    $ vigil token revoke -accessor ACCESSOR
    $ vigil token revoke -self`)
	accessor := fs.Bool("accessor", false, "the argument is an accessor, not a token")
	self := fs.Bool("self", false, "revoke the calling token")
	mode := fs.String("mode", "", `"" (token and children), "orphan" (token only) or "path" (every token under a path prefix)`)
	pos, code, ok := parseCmd(fs, args)
	if !ok {
		return code
	}
	switch *mode {
	case "", "orphan", "path":
	default:
		return usageError("Invalid mode: %s", *mode)
	}
	switch {
	case *self && len(pos) > 0:
		return usageError("Tokens cannot be specified with -self")
	case !*self && len(pos) < 1:
		return usageError("Not enough arguments (expected 1, got 0)")
	case len(pos) > 1:
		return usageError("Too many arguments (expected 1, got %d)", len(pos))
	case *self && *accessor:
		return usageError("Cannot use -self with -accessor")
	case *self && *mode != "":
		return usageError("Cannot use -self with -mode")
	case *accessor && *mode != "":
		return usageError("Cannot use -accessor with -mode=%s", *mode)
	}
	client, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	tok := ""
	if len(pos) == 1 {
		tok = strings.TrimSpace(pos[0])
	}
	switch {
	case *self:
		err = client.Auth().Token().RevokeSelf("")
	case *accessor:
		err = client.Auth().Token().RevokeAccessor(tok)
	case *mode == "orphan":
		err = client.Auth().Token().RevokeOrphan(tok)
	case *mode == "path":
		err = client.Sys().RevokePrefix(tok)
	default:
		err = client.Auth().Token().RevokeTree(tok)
	}
	if err != nil {
		return apiError("revoking token", err)
	}
	fmt.Fprintln(stdout, "Success! Revoked token (if it existed)")
	return 0
}
