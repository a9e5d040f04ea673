package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
)

func init() {
	register(&command{name: "login", synopsis: "Authenticate and store the token for later commands", run: runLogin})
}

// usernameMethods log in at auth/<path>/login/<username> with the other
// fields (password) in the body, as Vault's CLI handlers for them do.
var usernameMethods = map[string]bool{"userpass": true, "ldap": true, "okta": true, "radius": true}

// runLogin is `vigil login [TOKEN|-]` or `vigil login -method=NAME [-path=P] K=V...`.
func runLogin(args []string) int {
	var cf clientFlags
	fs := newFlags("login", &cf)
	setUsage(fs, "login [options] [TOKEN | - | K=V...]", `
Authenticates and stores the resulting token in ~/.vigil-token (mode 0600),
where later commands find it when VIGIL_TOKEN and VAULT_TOKEN are unset.

With the default token method the token is checked with a self-lookup:

    $ vigil login hvs.XXXX
    $ echo hvs.XXXX | vigil login -

Other methods write K=V pairs to auth/<path>/login; userpass, ldap, okta and
radius put the username in the path, as Vault does:

    $ vigil login -method=userpass username=alice   (password read from stdin)
    $ vigil login -method=ldap username=carol
    $ vigil login -method=approle role_id=... secret_id=...
    $ vigil login -method=jwt role=ci jwt=@token.jwt
    $ vigil login -method=kubernetes role=billing jwt=@/var/run/secrets/kubernetes.io/serviceaccount/token
    $ vigil login -method=cert -client-cert=me.crt -client-key=me.key name=clinicians

OIDC opens the provider's login page in a browser (or prints its URL with
skip_browser=true) and waits on localhost:8250 for the provider to send the
browser back:

    $ vigil login -method=oidc role=human [port=8250] [skip_browser=true]

AWS signs sts:GetCallerIdentity with the AWS SDK's credentials and sends
only the signed request:

    $ vigil login -method=aws role=app [region=us-east-1] [header_value=vigil.example.com]`)
	method := fs.String("method", "token", "auth method type")
	mountPath := fs.String("path", "", "mount path of the auth method (default: the method name)")
	noStore := fs.Bool("no-store", false, "do not store the token")
	noPrint := fs.Bool("no-print", false, "do not print the token information")
	tokenOnly := fs.Bool("token-only", false, "print only the token, do not store it (same as -field=token -no-store)")
	pos, code, ok := parseCmd(fs, args)
	if !ok {
		return code
	}
	if c := cf.checkFormat(); c != 0 {
		return c
	}
	if *tokenOnly {
		*noStore, cf.field = true, "token"
	}
	client, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	var secret *vaultapi.Secret
	if *method == "token" {
		secret, code = loginToken(client, pos)
	} else {
		secret, code = loginMethod(client, *method, *mountPath, pos)
	}
	if secret == nil {
		return code
	}
	tok := secret.Auth.ClientToken
	if !*noStore {
		if err := storeToken(tok); err != nil {
			return fail("storing token: %v", err)
		}
		for _, env := range []string{"VIGIL_TOKEN", "VAULT_TOKEN"} {
			if os.Getenv(env) != "" {
				fmt.Fprintf(stderr, "WARNING! The %s environment variable is set! Its value takes precedence\nover the stored token; unset %s if this is unwanted.\n\n", env, env)
			}
		}
	}
	if cf.field != "" {
		return cf.printField(secretField(secret, cf.field))
	}
	if *noPrint {
		return 0
	}
	if cf.isTable() {
		if *noStore {
			fmt.Fprintln(stdout, "Success! You are now authenticated. The token information is displayed below.\nThe token was NOT stored; export it as VIGIL_TOKEN to use it.")
		} else {
			fmt.Fprintln(stdout, "Success! You are now authenticated. The token information displayed below\nis already stored in "+tokenFile()+". You do NOT need to run \"vigil login\"\nagain. Future requests will automatically use this token.")
		}
		fmt.Fprintln(stdout)
	}
	return cf.printSecret(secret)
}

// loginToken verifies a token with lookup-self and builds the auth secret
// from the lookup, as Vault's token login does.
func loginToken(client *vaultapi.Client, args []string) (*vaultapi.Secret, int) {
	tok := ""
	switch {
	case len(args) > 1:
		return nil, usageError("Too many arguments (expected at most 1, got %d)", len(args))
	case len(args) == 1 && strings.HasPrefix(args[0], "token="):
		tok = strings.TrimPrefix(args[0], "token=")
	case len(args) == 1:
		tok = args[0]
	}
	if tok == "" || tok == "-" {
		var err error
		if tok, err = readSecretInput("Token (will be hidden): "); err != nil {
			return nil, fail("reading token: %v", err)
		}
	}
	if tok == "" {
		return nil, usageError("A token must be passed to auth, please view the help for more information.")
	}
	client.SetToken(tok)
	look, err := client.Auth().Token().LookupSelf()
	if err != nil {
		return nil, apiError("authenticating", err)
	}
	if look == nil || look.Data == nil {
		return nil, fail("authenticating: empty response from lookup-self")
	}
	a := &vaultapi.SecretAuth{ClientToken: tok}
	a.Accessor, _ = look.TokenAccessor()
	a.Policies, _ = look.TokenPolicies()
	a.TokenPolicies = a.Policies
	a.Renewable, _ = look.TokenIsRenewable()
	a.Metadata, _ = look.TokenMetadata()
	if ttl, err := look.TokenTTL(); err == nil {
		a.LeaseDuration = int(ttl / time.Second)
	}
	return &vaultapi.Secret{Auth: a}, 0
}

// loginMethod logs in with an auth method other than token.
func loginMethod(client *vaultapi.Client, method, mount string, args []string) (*vaultapi.Secret, int) {
	data, err := parseKVArgs(args)
	if err != nil {
		return nil, usageError("Failed to parse K=V data: %v", err)
	}
	if mount == "" {
		mount = method
	}
	mount = strings.Trim(mount, "/")
	client.SetToken("")
	switch method {
	case "oidc":
		return loginOIDC(client, mount, data)
	case "aws":
		return loginAWS(client, mount, data)
	}
	path := "auth/" + mount + "/login"
	if usernameMethods[method] {
		user, _ := data["username"].(string)
		if user == "" {
			return nil, usageError("'username' must be specified")
		}
		delete(data, "username")
		if _, ok := data["password"]; !ok {
			pw, err := readSecretInput("Password (will be hidden): ")
			if err != nil {
				return nil, fail("reading password: %v", err)
			}
			data["password"] = pw
		}
		path += "/" + user
	}
	client.SetToken("")
	secret, err := client.Logical().Write(path, data)
	if err != nil {
		return nil, apiError("authenticating", err)
	}
	if secret == nil || secret.Auth == nil || secret.Auth.ClientToken == "" {
		return nil, fail("authenticating: empty response from auth method %q", method)
	}
	return secret, 0
}

// storeToken writes the token file atomically with mode 0600.
func storeToken(tok string) error {
	path := tokenFile()
	tmp, err := os.CreateTemp(filepath.Dir(path), ".vigil-token.tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		_ = tmp.Close()
		return err
	}
	if _, err := tmp.WriteString(tok); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
