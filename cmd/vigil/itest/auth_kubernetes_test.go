package itest

import (
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	authv1 "k8s.io/api/authentication/v1"

	"github.com/vigilsec/vigil/core/server/servertest"
)

// tokenReviewServer stands in for a Kubernetes API server's TokenReview
// endpoint (no API server can run here). It knows a few tokens, checks
// the reviewer's bearer token and the requested audiences as the real one
// does, and answers with k8s.io/api TokenReview objects.
type tokenReviewServer struct {
	*httptest.Server
	mu        sync.Mutex
	reviewers []string
}

type saToken struct {
	user      string
	uid       string
	audiences []string
	invalid   string // non-empty: not authenticated, with this error
}

func newTokenReviewServer(t *testing.T, reviewer string, tokens map[string]saToken) *tokenReviewServer {
	t.Helper()
	trs := &tokenReviewServer{}
	trs.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/apis/authentication.k8s.io/v1/tokenreviews" {
			http.NotFound(w, r)
			return
		}
		bearer := r.Header.Get("Authorization")
		trs.mu.Lock()
		trs.reviewers = append(trs.reviewers, bearer)
		trs.mu.Unlock()
		if bearer != "Bearer "+reviewer {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var tr authv1.TokenReview
		if err := json.NewDecoder(r.Body).Decode(&tr); err != nil || tr.Kind != "TokenReview" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		tok, ok := tokens[tr.Spec.Token]
		switch {
		case !ok:
			tr.Status = authv1.TokenReviewStatus{Error: "invalid bearer token"}
		case tok.invalid != "":
			tr.Status = authv1.TokenReviewStatus{Error: tok.invalid}
		case len(tr.Spec.Audiences) > 0 && !slices.Contains(tok.audiences, tr.Spec.Audiences[0]):
			tr.Status = authv1.TokenReviewStatus{Error: "token audiences are invalid for the target audiences"}
		default:
			aud := tok.audiences
			if len(tr.Spec.Audiences) > 0 {
				aud = tr.Spec.Audiences
			}
			tr.Status = authv1.TokenReviewStatus{Authenticated: true, Audiences: aud, User: authv1.UserInfo{
				Username: tok.user, UID: tok.uid, Extra: map[string]authv1.ExtraValue{"authentication.kubernetes.io/pod-name": {"billing-7d9f"}}}}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(&tr)
	}))
	t.Cleanup(trs.Close)
	return trs
}

func (trs *tokenReviewServer) caPEM() string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: trs.Certificate().Raw}))
}

// TestKubernetesLoginTokenReview: a pod's token is validated through the
// TokenReview API (a test server, see tokenReviewServer) authorized by the
// configured reviewer JWT; the role binds namespaces and service account
// names (globs) and optionally an audience. The service account's uid
// names the entity alias.
func TestKubernetesLoginTokenReview(t *testing.T) {
	s, dir := loginServer(t, servertest.Options{})
	c := s.Client
	acc := enableAuth(t, c, "kubernetes", "kubernetes")
	k8s := newTokenReviewServer(t, "reviewer-jwt", map[string]saToken{
		"tok-billing": {user: "system:serviceaccount:billing:billing-app", uid: "uid-123", audiences: []string{"https://kubernetes.default.svc"}},
		"tok-default": {user: "system:serviceaccount:default:billing-app", uid: "uid-456", audiences: []string{"https://kubernetes.default.svc"}},
		"tok-revoked": {invalid: "token has been invalidated"},
		"tok-user":    {user: "kubernetes-admin", uid: "uid-789", audiences: []string{"https://kubernetes.default.svc"}},
	})
	mustWriteAPI(t, c, "auth/kubernetes/config", map[string]any{"kubernetes_host": k8s.URL,
		"kubernetes_ca_cert": k8s.caPEM(), "token_reviewer_jwt": "reviewer-jwt"})
	mustWriteAPI(t, c, "auth/kubernetes/role/billing", map[string]any{"bound_service_account_names": "billing-*",
		"bound_service_account_namespaces": "billing", "token_policies": "app", "token_ttl": "20m"})
	mustWriteAPI(t, c, "auth/kubernetes/role/payments", map[string]any{"bound_service_account_names": "payments",
		"bound_service_account_namespaces": "*", "token_policies": "app"})
	mustWriteAPI(t, c, "auth/kubernetes/role/vigil-aud", map[string]any{"bound_service_account_names": "*",
		"bound_service_account_namespaces": "*", "audience": "vigil", "token_policies": "app"})
	if cfg, err := c.Logical().Read("auth/kubernetes/config"); err != nil || cfg.Data["token_reviewer_jwt"] != nil {
		t.Fatalf("config read must not return the reviewer JWT: %v %v", cfg, err)
	}

	anon := s.NewClient("")
	const path = "auth/kubernetes/login"
	sec, err := anon.Logical().Write(path, map[string]any{"role": "billing", "jwt": "tok-billing"})
	entity := wantLogin(t, s.Server, sec, err, acc, "uid-123", "app", "default")
	if sec.Auth.Metadata["service_account_namespace"] != "billing" || sec.Auth.Metadata["service_account_pod_name"] != "billing-7d9f" {
		t.Fatalf("token metadata %v", sec.Auth.Metadata)
	}
	if sec.Auth.LeaseDuration != 1200 {
		t.Fatalf("token ttl %d, want the role's 1200", sec.Auth.LeaseDuration)
	}
	k8s.mu.Lock()
	if len(k8s.reviewers) == 0 || k8s.reviewers[0] != "Bearer reviewer-jwt" {
		t.Fatalf("the review was not authorized by the reviewer JWT: %v", k8s.reviewers)
	}
	k8s.mu.Unlock()
	// The same pod again: the same entity.
	again, err := anon.Logical().Write(path, map[string]any{"role": "billing", "jwt": "tok-billing"})
	if err != nil || again.Auth.EntityID != entity {
		t.Fatalf("second login: %v, entity %v want %s", err, again, entity)
	}

	for name, tc := range map[string]struct{ role, jwt, reason string }{
		"wrong namespace": {"billing", "tok-default", `namespace "default" not authorized`},
		"wrong name":      {"payments", "tok-billing", `service account name "billing-app" not authorized`},
		"revoked token":   {"billing", "tok-revoked", "lookup failed: token has been invalidated"},
		"unknown token":   {"billing", "tok-forged", "lookup failed: invalid bearer token"},
		"wrong audience":  {"vigil-aud", "tok-billing", "token audiences are invalid"},
		"not an sa":       {"billing", "tok-user", `"kubernetes-admin" is not a service account`},
		"unknown role":    {"nope", "tok-billing", `invalid role name "nope"`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := anon.Logical().Write(path, map[string]any{"role": tc.role, "jwt": tc.jwt})
			wantRefused(t, dir, err, path, tc.reason)
		})
	}
	t.Run("role needs bindings", func(t *testing.T) {
		_, err := c.Logical().Write("auth/kubernetes/role/empty", map[string]any{"bound_service_account_names": "x"})
		wantStatus(t, err, 400)
	})
	t.Run("reviewer refused", func(t *testing.T) {
		mustWriteAPI(t, c, "auth/kubernetes/config", map[string]any{"token_reviewer_jwt": "stale-reviewer"})
		_, err := anon.Logical().Write(path, map[string]any{"role": "billing", "jwt": "tok-billing"})
		wantStatus(t, err, 503)
	})
}

// TestKubernetesLoginLocalValidation: with local_jwt_validation the
// token's signature is checked against the keys the issuer's OIDC
// discovery document names — here the real OpenID provider, which issues
// a token whose subject is shaped like a service account's — with its
// issuer, audience and expiry; no TokenReview call is made.
func TestKubernetesLoginLocalValidation(t *testing.T) {
	op := oidcProvider(t)
	clock := newFakeClock()
	s, dir := loginServer(t, servertest.Options{Now: clock.Now})
	c := s.Client
	acc := enableAuth(t, c, "k8s-local", "kubernetes")
	mustWriteAPI(t, c, "auth/k8s-local/config", map[string]any{"kubernetes_host": "https://kubernetes.invalid:6443",
		"issuer": op.issuer, "disable_iss_validation": false, "local_jwt_validation": true})
	mustWriteAPI(t, c, "auth/k8s-local/role/billing", map[string]any{"bound_service_account_names": "billing-app",
		"bound_service_account_namespaces": "billing", "audience": op.clientID, "alias_name_source": "serviceaccount_name",
		"token_policies": "app"})
	mustWriteAPI(t, c, "auth/k8s-local/role/payments-ns", map[string]any{"bound_service_account_names": "*",
		"bound_service_account_namespaces": "payments", "audience": op.clientID, "alias_name_source": "serviceaccount_name"})
	mustWriteAPI(t, c, "auth/k8s-local/role/other-aud", map[string]any{"bound_service_account_names": "*",
		"bound_service_account_namespaces": "*", "audience": "vault", "alias_name_source": "serviceaccount_name"})
	mustWriteAPI(t, c, "auth/k8s-local/role/by-uid", map[string]any{"bound_service_account_names": "*",
		"bound_service_account_namespaces": "*", "audience": op.clientID})
	tok := opIDToken(t, op, "billing-app", "billing-pw")

	anon := s.NewClient("")
	const path = "auth/k8s-local/login"
	sec, err := anon.Logical().Write(path, map[string]any{"role": "billing", "jwt": tok})
	wantLogin(t, s.Server, sec, err, acc, "billing/billing-app", "app")

	for name, tc := range map[string]struct{ role, jwt, reason string }{
		"wrong namespace": {"payments-ns", tok, `namespace "billing" not authorized`},
		"wrong audience":  {"other-aud", tok, "invalid audience"},
		"no uid":          {"by-uid", tok, "carries no service account uid"},
		"forged":          {"billing", tok[:len(tok)-4] + "AAAA", "invalid service account token"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := anon.Logical().Write(path, map[string]any{"role": tc.role, "jwt": tc.jwt})
			wantRefused(t, dir, err, path, tc.reason)
		})
	}
	t.Run("expired", func(t *testing.T) {
		clock.Advance(3 * time.Hour)
		_, err := anon.Logical().Write(path, map[string]any{"role": "billing", "jwt": tok})
		wantRefused(t, dir, err, path, "token is expired")
	})
}
