package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/vigilsec/vigil/core/auth/awsauth/mototest"
	"github.com/vigilsec/vigil/core/auth/jwtauth/oidctest"
	"github.com/vigilsec/vigil/core/testsvc"
	"github.com/vigilsec/vigil/reports/query"
)

// cliLoginEntity runs `vigil login ... -format=json -no-store` and returns
// the entity id of the token it got.
func cliLoginEntity(t *testing.T, args ...string) string {
	t.Helper()
	out := mustOK(t, append([]string{"login", "-format=json", "-no-store"}, args...)...)
	var sec struct {
		Auth struct {
			EntityID string   `json:"entity_id"`
			Policies []string `json:"policies"`
		} `json:"auth"`
	}
	if err := json.Unmarshal([]byte(out), &sec); err != nil || sec.Auth.EntityID == "" {
		t.Fatalf("login output: %v\n%s", err, out)
	}
	return sec.Auth.EntityID
}

// TestLoginLDAPAndOIDCOnePerson: Carol logs in with `vigil login
// -method=ldap` (the real slapd) and with `vigil login -method=oidc`
// (the real OpenID provider; the browser is scripted: it fills the
// provider's login form and is sent back to the CLI's callback listener).
// The two logins make two entities until an operator merges them and
// names the person; `vigil audit query --actor carol` then returns both
// logins.
func TestLoginLDAPAndOIDCOnePerson(t *testing.T) {
	issuer := testsvc.Env(t, "VIGIL_TEST_OIDC_ISSUER")
	clientID, secret := testsvc.Env(t, "VIGIL_TEST_OIDC_CLIENT_ID"), testsvc.Env(t, "VIGIL_TEST_OIDC_CLIENT_SECRET")
	ldapURL := testsvc.Env(t, "VIGIL_TEST_LDAP_URL")
	suffix := testsvc.Env(t, "VIGIL_TEST_LDAP_SUFFIX")
	ca, err := os.ReadFile(testsvc.Env(t, "VIGIL_TEST_LDAP_CA_FILE"))
	if err != nil {
		t.Fatal(err)
	}
	s, _ := mustQueryCLIServer(t)
	c := s.Client
	if err := c.Sys().PutPolicy("app", `path "secret/data/app/*" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	mustOK(t, "auth", "enable", "ldap")
	mustOK(t, "auth", "enable", "oidc")
	if _, err := c.Logical().Write("auth/ldap/config", map[string]any{"url": ldapURL, "starttls": true, "certificate": string(ca),
		"binddn": testsvc.Env(t, "VIGIL_TEST_LDAP_BINDDN"), "bindpass": testsvc.Env(t, "VIGIL_TEST_LDAP_BINDPASS"),
		"userdn": "ou=people," + suffix, "userattr": "uid", "groupdn": "ou=groups," + suffix, "token_policies": "app"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Logical().Write("auth/oidc/config", map[string]any{"oidc_discovery_url": issuer, "oidc_client_id": clientID,
		"oidc_client_secret": secret, "default_role": "human"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Logical().Write("auth/oidc/role/human", map[string]any{"user_claim": "email", "oidc_scopes": "email",
		"allowed_redirect_uris": "http://localhost:18250/oidc/callback", "token_policies": "app"}); err != nil {
		t.Fatal(err)
	}

	ldapEntity := cliLoginEntity(t, "-method=ldap", "username=carol", "password=carol-pw")

	// The scripted browser: log in at the provider as Carol and follow the
	// redirect to the CLI's listener.
	browsed := make(chan string, 1)
	old := openBrowser
	openBrowser = func(u string) error {
		go func() {
			oidctest.Authorize(t, u, "carol", "carol-pw", true)
			browsed <- u
		}()
		return nil
	}
	t.Cleanup(func() { openBrowser = old })
	oidcEntity := cliLoginEntity(t, "-method=oidc", "port=18250", "role=human")
	if u := <-browsed; !strings.Contains(u, "code_challenge=") {
		t.Fatalf("the browser was sent to %s, without a PKCE challenge", u)
	}
	if oidcEntity == ldapEntity {
		t.Fatal("two methods made one entity before any merge")
	}

	// skip_browser prints the URL and leaves the browser alone.
	openBrowser = func(string) error { t.Error("skip_browser=true opened a browser"); return nil }
	oldWait := oidcLoginTimeout
	oidcLoginTimeout = 200 * time.Millisecond // nobody comes back: give up soon
	r := runCLI(t, "login", "-method=oidc", "port=18250", "skip_browser=true")
	oidcLoginTimeout = oldWait
	r.wantCode(t, 2, "timed out")
	if !strings.Contains(r.err, "Launching browser to:") || !strings.Contains(r.err, issuer) {
		t.Fatalf("skip_browser output:\n%s", r.err)
	}

	mustOK(t, "write", "identity/entity/merge", "from_entity_ids="+oidcEntity, "to_entity_id="+ldapEntity)
	mustOK(t, "write", "identity/entity/id/"+ldapEntity, "name=carol")
	if again := cliLoginEntity(t, "-method=ldap", "username=carol", "password=carol-pw"); again != ldapEntity {
		t.Fatalf("after the merge LDAP logs in as %s, want %s", again, ldapEntity)
	}

	out := mustOK(t, "audit", "query", "--actor", "carol", "--since", "1h", "--format", "json")
	var res query.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	logins := map[string]int{}
	for _, r := range res.Records {
		if r.Allowed && (r.Path == "auth/ldap/login/carol" || r.Path == "auth/oidc/oidc/callback") {
			logins[r.MountType]++
		}
	}
	if logins["ldap"] != 2 || logins["oidc"] != 1 {
		t.Fatalf("logins found by --actor carol: %v\n%s", logins, out)
	}
}

// TestLoginAWSCLI: `vigil login -method=aws` signs GetCallerIdentity with
// the AWS SDK's credentials (here from the environment: an IAM user made
// in moto_server) and logs in; a role whose ARN binding excludes the user
// refuses it.
func TestLoginAWSCLI(t *testing.T) {
	moto := testsvc.Env(t, "VIGIL_TEST_MOTO_ENDPOINT")
	s := mustCLIServer(t)
	c := s.Client
	mustOK(t, "auth", "enable", "aws")
	user := "cli-" + uuid.NewString()[:8]
	if _, err := c.Logical().Write("auth/aws/config/client", map[string]any{"sts_endpoint": moto, "iam_server_id_header_value": "vigil.test"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Logical().Write("auth/aws/role/people", map[string]any{"bound_iam_principal_arn": "arn:aws:iam::" + mototest.Account + ":user/" + user, "token_policies": "default"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Logical().Write("auth/aws/role/apps", map[string]any{"bound_iam_principal_arn": "arn:aws:iam::" + mototest.Account + ":role/*"}); err != nil {
		t.Fatal(err)
	}
	creds := mototest.User(t, moto, user)
	t.Setenv("AWS_ACCESS_KEY_ID", creds.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", creds.SecretAccessKey)
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	out := mustOK(t, "login", "-method=aws", "-format=json", "-no-store", "role=people", "header_value=vigil.test")
	if !strings.Contains(out, `"canonical_arn": "arn:aws:iam::`+mototest.Account+`:user/`+user+`"`) {
		t.Fatalf("login output:\n%s", out)
	}
	runCLI(t, "login", "-method=aws", "-no-store", "role=apps", "header_value=vigil.test").wantCode(t, 2, "does not belong to the role")
	runCLI(t, "login", "-method=aws", "-no-store", "role=people").wantCode(t, 2, "X-Vault-AWS-IAM-Server-ID")
}
