package awsauth

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	glob "github.com/ryanuber/go-glob"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

func (b *Backend) loginRoute() framework.Route {
	return framework.Route{Pattern: `login`, Unauthenticated: true, Fields: map[string]*framework.FieldSchema{
		"role":                    {Type: framework.TypeLowerCaseString},
		"iam_http_request_method": {Type: framework.TypeString},
		"iam_request_url":         {Type: framework.TypeString},
		"iam_request_body":        {Type: framework.TypeString},
		// A string (base64 JSON, as Vault's CLI sends) or an object:
		// TypeSlice keeps either as it came (see rawHeaders).
		"iam_request_headers": {Type: framework.TypeSlice},
		"identity":            {Type: framework.TypeString},
		"pkcs7":               {Type: framework.TypeString},
		"signature":           {Type: framework.TypeString},
		"nonce":               {Type: framework.TypeString},
	}, Operations: map[core.Operation]framework.HandlerFunc{core.OpUpdate: b.login},
		Help: "Log in with a signed sts:GetCallerIdentity request."}
}

func denied(format string, args ...any) error {
	return core.Errorf(core.CodePermissionDenied, format, args...)
}

// callerIdentity is STS's answer.
type callerIdentity struct {
	Arn     string `xml:"GetCallerIdentityResult>Arn"`
	UserID  string `xml:"GetCallerIdentityResult>UserId"`
	Account string `xml:"GetCallerIdentityResult>Account"`
}

// login checks the signed request's shape, forwards it to STS, checks the
// client address against the role's token_bound_cidrs, and binds the
// principal STS names to the role.
func (b *Backend) login(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	if d.String("pkcs7") != "" || d.String("identity") != "" {
		return nil, core.Invalid("ec2 logins are not supported; use the iam auth type")
	}
	cc, err := b.getClientConfig(ctx)
	if err != nil {
		return nil, err
	}
	signed, err := parseSignedRequest(d, cc.ServerIDValue)
	if err != nil {
		return nil, err
	}
	endpoint := cc.STSEndpoint
	if endpoint == "" {
		endpoint = DefaultSTSEndpoint
	}
	id, err := forward(ctx, endpoint, signed, cc.MaxRetries)
	if err != nil {
		return nil, err
	}
	canonical, err := canonicalARN(id.Arn)
	if err != nil {
		return nil, denied("%v", err)
	}
	// Without a role, the principal's friendly name names it, as in Vault.
	name := d.String("role")
	if name == "" {
		name = strings.ToLower(principalName(canonical))
	}
	r, err := b.getRole(ctx, name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, core.Invalid("entry for role %q not found", name)
	}
	// Checked as soon as the role is known (after STS when the principal
	// names it), before the role's bindings, as Vault does.
	if err := r.CheckLoginAddr(req); err != nil {
		return nil, err
	}
	if len(r.BoundAccountID) > 0 && !slices.Contains(r.BoundAccountID, id.Account) {
		return nil, denied("account ID %q does not belong to role %q", id.Account, name)
	}
	if len(r.BoundARNs) > 0 && !arnMatches(r.BoundARNs, canonical, id.Arn) {
		return nil, denied("IAM principal %q does not belong to the role %q", canonical, name)
	}
	ic, err := b.getIdentityConfig(ctx)
	if err != nil {
		return nil, err
	}
	alias := r.RoleID
	switch ic.IAMAlias {
	case aliasUniqueID:
		alias = id.UserID
	case aliasFullARN:
		alias = id.Arn
	case aliasCanonicalARN:
		alias = canonical
	}
	meta := map[string]string{"auth_type": "iam", "account_id": id.Account, "canonical_arn": canonical,
		"client_arn": id.Arn, "client_user_id": id.UserID, "role_id": r.RoleID}
	tokMeta := map[string]string{"role": name}
	for k, v := range meta {
		tokMeta[k] = v
	}
	a := r.Params.Auth(principalName(canonical), tokMeta)
	a.Alias = &core.Alias{Name: alias, Metadata: meta}
	a.InternalData = map[string]any{"role": name, "canonical_arn": canonical}
	return &core.Response{Auth: a}, nil
}

// signedRequest is the client's signed GetCallerIdentity request.
type signedRequest struct {
	url     *url.URL
	body    string
	headers http.Header
}

// parseSignedRequest decodes Vault's login fields: the method (POST), the
// base64 URL and body, and the base64 JSON headers. Only a
// GetCallerIdentity call is accepted, and with a configured server ID the
// signed headers must include it.
func parseSignedRequest(d *framework.FieldData, serverID string) (*signedRequest, error) {
	method := d.String("iam_http_request_method")
	if method == "" {
		return nil, core.Invalid("missing iam_http_request_method")
	}
	if method != http.MethodPost {
		return nil, core.Invalid("invalid iam_http_request_method %q: only POST is supported", method)
	}
	rawURL, err := b64(d.String("iam_request_url"))
	if err != nil {
		return nil, core.Invalid("failed to base64 decode iam_request_url")
	}
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return nil, core.Invalid("error parsing iam_request_url")
	}
	if u.Path != "" && u.Path != "/" {
		return nil, core.Invalid("iam_request_url must have the path /")
	}
	body, err := b64(d.String("iam_request_body"))
	if err != nil {
		return nil, core.Invalid("failed to base64 decode iam_request_body")
	}
	form, err := url.ParseQuery(body)
	if err != nil {
		return nil, core.Invalid("iam_request_body is not form-encoded")
	}
	if form.Get("Action") != "GetCallerIdentity" {
		return nil, core.Invalid("iam_request_body must be a GetCallerIdentity call")
	}
	for k := range form {
		if k != "Action" && k != "Version" {
			return nil, core.Invalid("unexpected parameter %q in iam_request_body", k)
		}
	}
	headers, err := parseHeaders(rawHeaders(d))
	if err != nil {
		return nil, err
	}
	if serverID != "" {
		if err := checkServerID(headers, serverID); err != nil {
			return nil, err
		}
	}
	return &signedRequest{url: u, body: body, headers: headers}, nil
}

func b64(s string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	return string(b), err
}

func rawHeaders(d *framework.FieldData) any {
	if v, ok := d.Get("iam_request_headers").([]any); ok && len(v) == 1 {
		return v[0]
	}
	return nil
}

// parseHeaders accepts base64 JSON (what Vault's CLI sends), plain JSON, or
// an object; values are a string or a list of strings.
func parseHeaders(v any) (http.Header, error) {
	var m map[string]any
	switch x := v.(type) {
	case string:
		if x == "" {
			return nil, core.Invalid("missing iam_request_headers")
		}
		raw := []byte(x)
		if dec, err := base64.StdEncoding.DecodeString(x); err == nil {
			raw = dec
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, core.Invalid("iam_request_headers is not a JSON object of headers")
		}
	case map[string]any:
		m = x
	default:
		return nil, core.Invalid("missing iam_request_headers")
	}
	h := http.Header{}
	for k, val := range m {
		switch vv := val.(type) {
		case string:
			h.Add(k, vv)
		case []any:
			for _, e := range vv {
				s, ok := e.(string)
				if !ok {
					return nil, core.Invalid("iam_request_headers %q: values must be strings", k)
				}
				h.Add(k, s)
			}
		default:
			return nil, core.Invalid("iam_request_headers %q: values must be strings", k)
		}
	}
	if h.Get("Authorization") == "" {
		return nil, core.Invalid("iam_request_headers has no Authorization header: the request is not signed")
	}
	return h, nil
}

// checkServerID requires the server ID header with the configured value,
// covered by the signature.
func checkServerID(h http.Header, want string) error {
	if h.Get(ServerIDHeader) != want {
		return denied("expected %s header value %q", ServerIDHeader, want)
	}
	auth := h.Get("Authorization")
	i := strings.Index(auth, "SignedHeaders=")
	if i < 0 {
		return denied("the Authorization header names no signed headers")
	}
	signed := auth[i+len("SignedHeaders="):]
	if j := strings.IndexByte(signed, ','); j >= 0 {
		signed = signed[:j]
	}
	if !slices.Contains(strings.Split(strings.ToLower(signed), ";"), strings.ToLower(ServerIDHeader)) {
		return denied("the %s header is not signed", ServerIDHeader)
	}
	return nil
}

// forward sends the signed request to endpoint (keeping the Host the
// client signed) and decodes STS's answer.
func forward(ctx context.Context, endpoint string, s *signedRequest, maxRetries int) (*callerIdentity, error) {
	target := strings.TrimSuffix(endpoint, "/") + "/"
	if s.url.RawQuery != "" {
		target += "?" + s.url.RawQuery
	}
	tries := 1 + max(maxRetries, 0)
	if maxRetries < 0 {
		tries = 3
	}
	var lastErr error
	for i := 0; i < tries; i++ {
		id, retry, err := forwardOnce(ctx, target, s)
		if err == nil || !retry {
			return id, err
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return nil, lastErr
		case <-time.After(time.Duration(100*(i+1)) * time.Millisecond):
		}
	}
	return nil, lastErr
}

var stsClient = &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
	return http.ErrUseLastResponse // never follow a redirect with a signed request
}}

func forwardOnce(ctx context.Context, target string, s *signedRequest) (*callerIdentity, bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader([]byte(s.body)))
	if err != nil {
		return nil, false, core.Errorf(core.CodeInternal, "sts request: %v", err)
	}
	for k, vs := range s.headers {
		if strings.EqualFold(k, "Host") || strings.EqualFold(k, "Content-Length") {
			continue
		}
		req.Header[k] = vs
	}
	req.Host = s.url.Host
	if h := s.headers.Get("Host"); h != "" {
		req.Host = h
	}
	resp, err := stsClient.Do(req)
	if err != nil {
		return nil, true, core.Errorf(core.CodeUnavailable, "error making upstream request: %v", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, true, core.Errorf(core.CodeUnavailable, "error reading the STS answer: %v", err)
	}
	if resp.StatusCode >= 500 {
		return nil, true, core.Errorf(core.CodeUnavailable, "STS answered HTTP %d", resp.StatusCode)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Code    string `xml:"Error>Code"`
			Message string `xml:"Error>Message"`
		}
		_ = xml.Unmarshal(raw, &e)
		return nil, false, denied("error making upstream request: STS refused the signed request (HTTP %d %s: %s)", resp.StatusCode, e.Code, e.Message)
	}
	var id callerIdentity
	if err := xml.Unmarshal(raw, &id); err != nil || id.Arn == "" {
		return nil, false, core.Errorf(core.CodeUnavailable, "the STS answer is not a GetCallerIdentity response")
	}
	return &id, false, nil
}

// canonicalARN maps an STS principal ARN to the IAM ARN roles bind:
// an assumed-role session becomes its role (arn:...:iam::acct:role/Name),
// a user or role ARN stays as it is.
func canonicalARN(arn string) (string, error) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" {
		return "", fmt.Errorf("unrecognized principal ARN %q", arn)
	}
	partition, service, account, resource := parts[1], parts[2], parts[4], parts[5]
	kind, rest, _ := strings.Cut(resource, "/")
	switch {
	case service == "sts" && kind == "assumed-role":
		roleName, _, ok := strings.Cut(rest, "/")
		if !ok || roleName == "" {
			return "", fmt.Errorf("unrecognized assumed-role ARN %q", arn)
		}
		return fmt.Sprintf("arn:%s:iam::%s:role/%s", partition, account, roleName), nil
	case service == "iam" && (kind == "user" || kind == "role") && rest != "":
		return arn, nil
	case service == "iam" && resource == "root":
		return arn, nil
	case service == "sts" && kind == "federated-user":
		return arn, nil
	}
	return "", fmt.Errorf("unrecognized principal ARN %q", arn)
}

// arnMatches compares bound ARNs (globs) with the canonical ARN, and with
// the role's name alone for roles bound with their path stripped.
func arnMatches(bound []string, canonical, full string) bool {
	for _, p := range bound {
		if p == canonical || p == full || glob.Glob(p, canonical) {
			return true
		}
	}
	return false
}

// principalName is the last part of an ARN (a user or role name), used as
// the token's display name.
func principalName(arn string) string {
	if i := strings.LastIndexByte(arn, '/'); i >= 0 {
		return arn[i+1:]
	}
	if i := strings.LastIndexByte(arn, ':'); i >= 0 {
		return arn[i+1:]
	}
	return arn
}
