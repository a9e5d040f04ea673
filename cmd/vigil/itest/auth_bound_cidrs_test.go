package itest

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	vaultapi "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/core/auth/awsauth/awslogin"
	"github.com/vigilsec/vigil/core/auth/awsauth/mototest"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/server/servertest"
	"github.com/vigilsec/vigil/core/testsvc"
)

// Every auth method refuses a login from an address outside the role's
// token_bound_cidrs, as Vault does, not only the later use of its token.
// The test clients connect from 127.0.0.1: "far" roles are bound to
// 10.0.0.0/8, "near" roles to 127.0.0.0/8.
const (
	farCIDRs    = "10.0.0.0/8"
	nearCIDRs   = "127.0.0.0/8"
	cidrRefusal = "source address 127.0.0.1 is not allowed by token_bound_cidrs"
)

// TestJWTLoginTokenBoundCIDRs: the address is checked once the role is
// known and before the JWT, so a forged JWT gets the same answer as a
// valid one; a role that includes the client logs in and its token works.
func TestJWTLoginTokenBoundCIDRs(t *testing.T) {
	s, dir := loginServer(t, servertest.Options{})
	c := s.Client
	acc := enableAuth(t, c, "jwt", "jwt")
	iss := newJWTIssuer(t)
	mustWriteAPI(t, c, "auth/jwt/config", map[string]any{"jwt_validation_pubkeys": []string{iss.pubPEM}})
	for role, cidrs := range map[string]string{"far": farCIDRs, "near": nearCIDRs} {
		mustWriteAPI(t, c, "auth/jwt/role/"+role, map[string]any{"role_type": "jwt", "bound_audiences": "vigil",
			"user_claim": "sub", "token_policies": "app", "token_bound_cidrs": cidrs})
	}
	now := time.Now()
	jwt := iss.sign(t, map[string]any{"sub": "ci-runner", "aud": "vigil", "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()})
	anon := s.NewClient("")
	const path = "auth/jwt/login"

	_, err := anon.Logical().Write(path, map[string]any{"role": "far", "jwt": jwt})
	wantRefused(t, dir, err, path, cidrRefusal)
	_, err = anon.Logical().Write(path, map[string]any{"role": "far", "jwt": jwt[:len(jwt)-4] + "AAAA"})
	wantRefused(t, dir, err, path, cidrRefusal)

	sec, err := anon.Logical().Write(path, map[string]any{"role": "near", "jwt": jwt})
	wantLogin(t, s.Server, sec, err, acc, "ci-runner", "app")
}

// TestOIDCCallbackTokenBoundCIDRs: in the authorization code flow the
// callback is the login; it is refused from outside the role's CIDRs
// before the code is exchanged (a made-up code gets the same answer),
// and works from inside them.
func TestOIDCCallbackTokenBoundCIDRs(t *testing.T) {
	op := oidcProvider(t)
	s, dir := loginServer(t, servertest.Options{})
	c := s.Client
	acc := enableAuth(t, c, "oidc", "oidc")
	mustWriteAPI(t, c, "auth/oidc/config", map[string]any{"oidc_discovery_url": op.issuer,
		"oidc_client_id": op.clientID, "oidc_client_secret": op.secret})
	for role, cidrs := range map[string]string{"far": farCIDRs, "near": nearCIDRs} {
		mustWriteAPI(t, c, "auth/oidc/role/"+role, map[string]any{"user_claim": "email", "allowed_redirect_uris": opRedirect,
			"oidc_scopes": "email", "token_policies": "app", "token_bound_cidrs": cidrs})
	}
	anon := s.NewClient("")
	flow := func(role, code string) (*vaultapi.Secret, error) {
		sec, err := anon.Logical().Write("auth/oidc/oidc/auth_url", map[string]any{"role": role, "redirect_uri": opRedirect})
		if err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(sec.Data["auth_url"].(string))
		if err != nil {
			t.Fatal(err)
		}
		q := opAuthorize(t, u.String(), "carol", "carol-pw").Query()
		if code == "" {
			code = q.Get("code")
		}
		return anon.Logical().ReadWithData("auth/oidc/oidc/callback", map[string][]string{"state": {q.Get("state")}, "code": {code}})
	}
	for _, code := range []string{"", "made-up-code"} {
		_, err := flow("far", code)
		wantRefused(t, dir, err, "auth/oidc/oidc/callback", cidrRefusal)
	}
	sec, err := flow("near", "")
	wantLogin(t, s.Server, sec, err, acc, "carol@vigil.test", "app")
}

// TestKubernetesLoginTokenBoundCIDRs: the address is checked before the
// token is reviewed, so a refused client costs no TokenReview call.
func TestKubernetesLoginTokenBoundCIDRs(t *testing.T) {
	s, dir := loginServer(t, servertest.Options{})
	c := s.Client
	acc := enableAuth(t, c, "kubernetes", "kubernetes")
	k8s := newTokenReviewServer(t, "reviewer-jwt", map[string]saToken{
		"tok-billing": {user: "system:serviceaccount:billing:billing-app", uid: "uid-123", audiences: []string{"https://kubernetes.default.svc"}},
	})
	mustWriteAPI(t, c, "auth/kubernetes/config", map[string]any{"kubernetes_host": k8s.URL,
		"kubernetes_ca_cert": k8s.caPEM(), "token_reviewer_jwt": "reviewer-jwt"})
	for role, cidrs := range map[string]string{"far": farCIDRs, "near": nearCIDRs} {
		mustWriteAPI(t, c, "auth/kubernetes/role/"+role, map[string]any{"bound_service_account_names": "billing-app",
			"bound_service_account_namespaces": "billing", "token_policies": "app", "token_bound_cidrs": cidrs})
	}
	anon := s.NewClient("")
	const path = "auth/kubernetes/login"
	reviews := func() int {
		k8s.mu.Lock()
		defer k8s.mu.Unlock()
		return len(k8s.reviewers)
	}

	for _, jwt := range []string{"tok-billing", "tok-forged"} {
		_, err := anon.Logical().Write(path, map[string]any{"role": "far", "jwt": jwt})
		wantRefused(t, dir, err, path, cidrRefusal)
	}
	if n := reviews(); n != 0 {
		t.Fatalf("refused logins sent %d TokenReview calls, want none", n)
	}

	sec, err := anon.Logical().Write(path, map[string]any{"role": "near", "jwt": "tok-billing"})
	wantLogin(t, s.Server, sec, err, acc, "uid-123", "app")
	if n := reviews(); n != 1 {
		t.Fatalf("TokenReview calls %d, want 1", n)
	}
}

// TestAWSIAMLoginTokenBoundCIDRs: the address is checked once the role is
// known, before its principal and account bindings: a role bound to
// another account refuses the client for its address, as Vault does.
func TestAWSIAMLoginTokenBoundCIDRs(t *testing.T) {
	moto := testsvc.Env(t, "VIGIL_TEST_MOTO_ENDPOINT")
	s, dir := loginServer(t, servertest.Options{})
	c := s.Client
	acc := enableAuth(t, c, "aws", "aws")
	mustWriteAPI(t, c, "auth/aws/config/client", map[string]any{"sts_endpoint": moto})
	mustWriteAPI(t, c, "auth/aws/config/identity", map[string]any{"iam_alias": "full_arn"})
	user := "carol-" + uuid.NewString()[:8]
	userARN := "arn:aws:iam::" + motoAccount + ":user/" + user
	for role, cidrs := range map[string]string{"far": farCIDRs, "near": nearCIDRs} {
		mustWriteAPI(t, c, "auth/aws/role/"+role, map[string]any{"auth_type": "iam", "bound_iam_principal_arn": userARN,
			"token_policies": "app", "token_bound_cidrs": cidrs})
	}
	mustWriteAPI(t, c, "auth/aws/role/far-account", map[string]any{"auth_type": "iam", "bound_account_id": "999999999999",
		"token_policies": "app", "token_bound_cidrs": farCIDRs})
	carol := mototest.User(t, moto, user)
	anon := s.NewClient("")
	const path = "auth/aws/login"
	login := func(role string) (*vaultapi.Secret, error) {
		data, err := awslogin.Data(context.Background(), carol, awslogin.Options{})
		if err != nil {
			t.Fatal(err)
		}
		data["role"] = role
		return anon.Logical().Write(path, data)
	}

	for _, role := range []string{"far", "far-account"} {
		_, err := login(role)
		wantRefused(t, dir, err, path, cidrRefusal)
	}
	sec, err := login("near")
	wantLogin(t, s.Server, sec, err, acc, userARN, "app")
}

// TestLDAPLoginTokenBoundCIDRs: the mount's token_bound_cidrs apply to
// every user and are checked before the directory is asked, so a wrong
// password from outside gets the same answer as the right one.
func TestLDAPLoginTokenBoundCIDRs(t *testing.T) {
	dir0 := slapd(t)
	s, dir := loginServer(t, servertest.Options{})
	c := s.Client
	acc := enableAuth(t, c, "ldap", "ldap")
	cfg := dir0.config(dir0.url, true)
	cfg["token_policies"], cfg["token_bound_cidrs"] = "app", farCIDRs
	mustWriteAPI(t, c, "auth/ldap/config", cfg)
	anon := s.NewClient("")
	login := func(pw string) (*vaultapi.Secret, error) {
		return anon.Logical().Write("auth/ldap/login/carol", map[string]any{"password": pw})
	}
	const path = "auth/ldap/login/carol"

	for _, pw := range []string{"carol-pw", "wrong"} {
		_, err := login(pw)
		wantRefused(t, dir, err, path, cidrRefusal)
	}

	mustWriteAPI(t, c, "auth/ldap/config", map[string]any{"token_bound_cidrs": nearCIDRs})
	sec, err := login("carol-pw")
	wantLogin(t, s.Server, sec, err, acc, "carol", "app")
}

// TestCertLoginTokenBoundCIDRs: the address is checked after the
// certificate, so an untrusted certificate learns nothing about the
// role's CIDRs; a trusted one is refused by a role that excludes the
// client, and without a role name the next matching role that includes
// it is used.
func TestCertLoginTokenBoundCIDRs(t *testing.T) {
	serverCA := newCA(t, "Vigil test server CA")
	srvCert, srvKey := serverCA.issue(t, "server", "/CN=127.0.0.1", "serverAuth", "IP:127.0.0.1,DNS:localhost")
	clinic := newCA(t, "Clinic CA")
	rogue := newCA(t, "Rogue CA")
	carolCert, carolKey := clinic.issue(t, "carol", "/CN=carol/OU=icu", "clientAuth", "")
	fakeCert, fakeKey := rogue.issue(t, "carol-forged", "/CN=carol/OU=icu", "clientAuth", "")
	s, dir := loginServer(t, servertest.Options{ClientTLS: &vaultapi.TLSConfig{CACert: serverCA.certFile}, Configure: func(c *config.Config) {
		c.Listeners = []config.Listener{{Type: "tcp", Address: "127.0.0.1:0", TLSCertFile: srvCert, TLSKeyFile: srvKey}}
	}})
	c := s.Client
	acc := enableAuth(t, c, "cert", "cert")
	for role, cidrs := range map[string]string{"far": farCIDRs, "near": nearCIDRs} {
		mustWriteAPI(t, c, "auth/cert/certs/"+role, map[string]any{"certificate": clinic.certPEM,
			"token_policies": "app", "token_bound_cidrs": cidrs})
	}
	const path = "auth/cert/login"
	login := func(cert, key, role string) (*vaultapi.Secret, error) {
		tc := &vaultapi.TLSConfig{CACert: serverCA.certFile, ClientCert: cert, ClientKey: key}
		var data map[string]any
		if role != "" {
			data = map[string]any{"name": role}
		}
		return s.NewClientTLS("", tc).Logical().Write(path, data)
	}

	_, err := login(carolCert, carolKey, "far")
	wantRefused(t, dir, err, path, cidrRefusal)
	_, err = login(fakeCert, fakeKey, "far")
	wantRefused(t, dir, err, path, "certificate not trusted")
	if strings.Contains(err.Error(), "token_bound_cidrs") {
		t.Fatalf("an untrusted certificate was told about the CIDRs: %v", err)
	}

	sec, err := login(carolCert, carolKey, "near")
	wantLogin(t, s.Server, sec, err, acc, "carol", "app")
	// "far" sorts first and matches the certificate but not the address.
	sec, err = login(carolCert, carolKey, "")
	wantLogin(t, s.Server, sec, err, acc, "carol", "app")
	if sec.Auth.Metadata["cert_name"] != "near" {
		t.Fatalf("login without a name used role %q, want near", sec.Auth.Metadata["cert_name"])
	}
}
