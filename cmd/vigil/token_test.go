package main

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

func TestTokenCreateLookup(t *testing.T) {
	mustCLIServer(t)

	out := mustOK(t, "token", "create", "-ttl=1h", "-explicit-max-ttl=2h", "-policy=default", "-policy=app,ops",
		"-metadata=team=ops", "-display-name=ci", "-use-limit=5")
	tok := tableValue(t, out, "token")
	if tableValue(t, out, "token_duration") != "1h" || tableValue(t, out, "token_meta_team") != "ops" ||
		tableValue(t, out, "token_renewable") != "true" {
		t.Fatalf("create:\n%s", out)
	}

	look := mustOK(t, "token", "lookup", tok)
	ttl, err := strconv.Atoi(mustOK(t, "token", "lookup", "-field=ttl", tok))
	if err != nil || ttl < 3590 || ttl > 3600 {
		t.Fatalf("ttl %d %v", ttl, err)
	}
	for key, want := range map[string]string{"creation_ttl": "1h", "explicit_max_ttl": "2h", "display_name": "token-ci",
		"num_uses": "5", "meta": "map[team:ops]", "policies": "[app default ops]", "orphan": "false"} {
		if got := tableValue(t, look, key); got != want {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}
	acc := tableValue(t, look, "accessor")
	if got := tableValue(t, mustOK(t, "token", "lookup", "-accessor", acc), "display_name"); got != "token-ci" {
		t.Fatalf("lookup -accessor: %q", got)
	}
	// Without an argument: the caller (root).
	if got := mustOK(t, "token", "lookup", "-field=display_name"); got != "root" {
		t.Fatalf("lookup-self: %q", got)
	}

	var js map[string]any
	if err := json.Unmarshal([]byte(mustOK(t, "token", "create", "-orphan", "-period=24h", "-renewable=false", "-format=json")), &js); err != nil {
		t.Fatal(err)
	}
	auth := js["auth"].(map[string]any)
	if auth["orphan"] != true || auth["renewable"] != false || auth["lease_duration"] != float64(86400) {
		t.Fatalf("orphan periodic: %v", auth)
	}
	if got := mustOK(t, "token", "lookup", "-field=period", auth["client_token"].(string)); got != "86400" {
		t.Fatalf("period: %q", got)
	}

	runCLI(t, "token", "lookup", "hvs.nope").wantCode(t, 2, "Error looking up token", "Code: 403")
	runCLI(t, "token", "lookup", "-accessor").wantCode(t, 1, "Not enough arguments with -accessor")
	runCLI(t, "token", "create", "-ttl=forever").wantCode(t, 1, "invalid value")
	runCLI(t, "token", "create", "extra").wantCode(t, 1, "Too many arguments")
}

func TestTokenRenew(t *testing.T) {
	s := mustCLIServer(t)
	tok := mustOK(t, "token", "create", "-ttl=10m", "-explicit-max-ttl=1h", "-field=token")

	out := mustOK(t, "token", "renew", "-increment=30m", tok)
	if got := tableValue(t, out, "token_duration"); got != "30m" {
		t.Fatalf("renew -increment=30m:\n%s", out)
	}
	ttl, _ := strconv.Atoi(mustOK(t, "token", "lookup", "-field=ttl", tok))
	if ttl < 1790 || ttl > 1800 {
		t.Fatalf("ttl after renew %d", ttl)
	}
	// The explicit max TTL caps renewals.
	out = mustOK(t, "token", "renew", "-increment=5h", tok)
	if d := tableValue(t, out, "token_duration"); !strings.HasPrefix(d, "59m") && d != "1h" {
		t.Fatalf("renew past explicit max: %q", d)
	}
	// Renew by accessor, and renew-self with the token itself.
	acc := mustOK(t, "token", "lookup", "-field=accessor", tok)
	mustOK(t, "token", "renew", "-accessor", "-increment=20m", acc)
	t.Setenv("VIGIL_TOKEN", tok)
	if got := tableValue(t, mustOK(t, "token", "renew", "-increment=15m"), "token"); got != tok {
		t.Fatalf("renew-self token %q", got)
	}

	t.Setenv("VIGIL_TOKEN", s.RootToken)
	fixed := mustOK(t, "token", "create", "-ttl=10m", "-renewable=false", "-field=token")
	runCLI(t, "token", "renew", fixed).wantCode(t, 2, "Error renewing token", "Code: 400")
}

func TestTokenRevoke(t *testing.T) {
	s := mustCLIServer(t)
	root := s.RootToken
	parent := mustOK(t, "token", "create", "-ttl=1h", "-field=token")
	t.Setenv("VIGIL_TOKEN", parent)
	child := mustOK(t, "token", "create", "-ttl=1h", "-field=token")
	t.Setenv("VIGIL_TOKEN", root)

	// Default mode revokes the tree.
	if got := mustOK(t, "token", "revoke", parent); got != "Success! Revoked token (if it existed)\n" {
		t.Fatalf("revoke: %q", got)
	}
	runCLI(t, "token", "lookup", parent).wantCode(t, 2)
	runCLI(t, "token", "lookup", child).wantCode(t, 2)

	// -mode=orphan keeps the children, now orphans.
	parent = mustOK(t, "token", "create", "-ttl=1h", "-field=token")
	t.Setenv("VIGIL_TOKEN", parent)
	child = mustOK(t, "token", "create", "-ttl=1h", "-field=token")
	t.Setenv("VIGIL_TOKEN", root)
	mustOK(t, "token", "revoke", "-mode=orphan", parent)
	runCLI(t, "token", "lookup", parent).wantCode(t, 2)
	if got := mustOK(t, "token", "lookup", "-field=orphan", child); got != "true" {
		t.Fatalf("child orphan = %q", got)
	}

	// -accessor
	acc := mustOK(t, "token", "lookup", "-field=accessor", child)
	mustOK(t, "token", "revoke", "-accessor", acc)
	runCLI(t, "token", "lookup", child).wantCode(t, 2)

	// -self revokes the calling token.
	self := mustOK(t, "token", "create", "-ttl=1h", "-field=token")
	t.Setenv("VIGIL_TOKEN", self)
	mustOK(t, "token", "revoke", "-self")
	t.Setenv("VIGIL_TOKEN", root)
	runCLI(t, "token", "lookup", self).wantCode(t, 2)

	runCLI(t, "token", "revoke").wantCode(t, 1, "Not enough arguments")
	runCLI(t, "token", "revoke", "-self", "x").wantCode(t, 1, "Tokens cannot be specified with -self")
	runCLI(t, "token", "revoke", "-mode=all", "x").wantCode(t, 1, "Invalid mode")
	runCLI(t, "token", "revoke", "-accessor", "-mode=orphan", "x").wantCode(t, 1, "Cannot use -accessor with -mode")
	runCLI(t, "token", "revoke", "-accessor", "nosuchaccessor").wantCode(t, 2, "Error revoking token")
}
