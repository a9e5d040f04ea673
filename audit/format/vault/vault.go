// Package vault renders core.AuditEvent values as HashiCorp Vault audit log
// entries: the JSON objects Vault's file device writes, with Vault's field
// names and shapes, so tools that parse Vault audit logs parse Vigil's.
//
// Vigil's additions live under one top-level member, "vigil" (see Vigil),
// so they never collide with a field Vault may add. The chain members (seq,
// node_id, prev_hash, hash) are not added here: audit/chain appends them.
//
// Format is deterministic: the same event and Options always give the same
// bytes (struct members in declaration order, map keys sorted).
package vault

import (
	"errors"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/vigilsec/vigil/audit/hmac"
	"github.com/vigilsec/vigil/core"
)

// Entry is one audit entry, a request or a response.
type Entry struct {
	Time     string    `json:"time"`
	Type     string    `json:"type"` // "request" or "response"
	Auth     *Auth     `json:"auth,omitempty"`
	Request  *Request  `json:"request,omitempty"`
	Response *Response `json:"response,omitempty"`
	Error    string    `json:"error,omitempty"`
	Vigil    *Vigil    `json:"vigil,omitempty"`
}

// Auth is the caller (request entries and the "auth" of response entries)
// or the token a response issues (Response.Auth).
type Auth struct {
	ClientToken   string   `json:"client_token,omitempty"`
	Accessor      string   `json:"accessor,omitempty"`
	DisplayName   string   `json:"display_name,omitempty"`
	Policies      []string `json:"policies,omitempty"`
	TokenPolicies []string `json:"token_policies,omitempty"`
	// IdentityPolicies are the policies the token's entity and its groups
	// gave it (Policies holds them too).
	IdentityPolicies []string          `json:"identity_policies,omitempty"`
	PolicyResults    *PolicyResults    `json:"policy_results,omitempty"`
	Metadata         map[string]string `json:"metadata,omitempty"`
	EntityID         string            `json:"entity_id,omitempty"`
	TokenType        string            `json:"token_type,omitempty"`
	TokenTTL         int64             `json:"token_ttl,omitempty"`
	TokenIssueTime   string            `json:"token_issue_time,omitempty"`
	NumUses          int               `json:"num_uses,omitempty"`
	RemainingUses    int               `json:"remaining_uses,omitempty"`
}

// PolicyResults is the authorization decision.
type PolicyResults struct {
	Allowed          bool         `json:"allowed"`
	GrantingPolicies []PolicyInfo `json:"granting_policies,omitempty"`
}

// PolicyInfo names a granting policy, with the id and (outside the root
// namespace) the path of the namespace it belongs to, as Vault writes it.
type PolicyInfo struct {
	Name          string `json:"name,omitempty"`
	NamespaceID   string `json:"namespace_id,omitempty"`
	NamespacePath string `json:"namespace_path,omitempty"`
	Type          string `json:"type"`
}

// Namespace is the namespace the request was made in: {"id": "root"} for
// the root namespace, {"id": "<id>", "path": "hospital-a/"} for another.
type Namespace struct {
	ID   string `json:"id"`
	Path string `json:"path,omitempty"`
}

// namespaceOf is the entry's namespace member for req.
func namespaceOf(req *core.Request) *Namespace {
	ns := req.NS()
	if ns.IsRoot() {
		return &Namespace{ID: core.RootNamespaceID}
	}
	return &Namespace{ID: ns.ID, Path: ns.Path}
}

// policyNamespace is a granting policy's namespace id ("root" when the
// policy names none).
func policyNamespace(g core.PolicyRef) string {
	if g.NamespaceID == "" {
		return core.RootNamespaceID
	}
	return g.NamespaceID
}

// Request is the request part of both entry types.
type Request struct {
	ID                  string              `json:"id,omitempty"`
	Operation           string              `json:"operation,omitempty"`
	MountType           string              `json:"mount_type,omitempty"`
	MountPoint          string              `json:"mount_point,omitempty"`
	MountAccessor       string              `json:"mount_accessor,omitempty"`
	MountClass          string              `json:"mount_class,omitempty"`
	ClientToken         string              `json:"client_token,omitempty"`
	ClientTokenAccessor string              `json:"client_token_accessor,omitempty"`
	Namespace           *Namespace          `json:"namespace,omitempty"`
	Path                string              `json:"path,omitempty"`
	Data                map[string]any      `json:"data,omitempty"`
	RemoteAddr          string              `json:"remote_address,omitempty"`
	RemotePort          int                 `json:"remote_port,omitempty"`
	Headers             map[string][]string `json:"headers,omitempty"`
}

// Response is the response part of response entries.
type Response struct {
	MountType     string         `json:"mount_type,omitempty"`
	MountPoint    string         `json:"mount_point,omitempty"`
	MountAccessor string         `json:"mount_accessor,omitempty"`
	MountClass    string         `json:"mount_class,omitempty"`
	Auth          *Auth          `json:"auth,omitempty"`
	Secret        *Secret        `json:"secret,omitempty"`
	Data          map[string]any `json:"data,omitempty"`
	Warnings      []string       `json:"warnings,omitempty"`
	WrapInfo      *WrapInfo      `json:"wrap_info,omitempty"`
}

// Secret is the lease of a dynamic secret.
type Secret struct {
	LeaseID string `json:"lease_id"`
}

// WrapInfo is Vault's response-wrapping information.
type WrapInfo struct {
	TTL             int    `json:"ttl"`
	Token           string `json:"token"`
	Accessor        string `json:"accessor"`
	CreationTime    string `json:"creation_time"`
	CreationPath    string `json:"creation_path"`
	WrappedAccessor string `json:"wrapped_accessor,omitempty"`
}

// Vigil holds Vigil's additions to Vault's schema.
type Vigil struct {
	// DenyReasons, Advisories and Flags come from the authorization
	// decision (core.Decision): reasons of mandatory rules that denied,
	// reasons of advisory rules, and labels such as "break_glass". Flags
	// also hold Vigil's own labels (core.Request.Labels: control_group,
	// approver, wrap_request_id, ...), which win over a policy's.
	DenyReasons []string          `json:"deny_reasons,omitempty"`
	Advisories  []string          `json:"advisories,omitempty"`
	Flags       map[string]string `json:"flags,omitempty"`
	// PolicyError is set when the decision was a fail-closed deny because
	// policy evaluation failed.
	PolicyError string `json:"policy_error,omitempty"`
	// Actor names the Vigil subsystem behind an internal request (e.g.
	// "expiration"); such requests carry no client token.
	Actor string `json:"actor,omitempty"`
	// Identity names the person behind the token (see Identity): the
	// caller's, or for a login the identity it logged in.
	Identity *Identity `json:"identity,omitempty"`
	// Sealed marks a request rejected while the server was sealed. Its
	// tokens and data are omitted (nothing can be HMAC'd without the salt).
	Sealed bool `json:"sealed,omitempty"`
	// Status is the HTTP status answered (response entries only) and
	// ErrorCode the core.Code of the error, if any.
	Status    int    `json:"status,omitempty"`
	ErrorCode string `json:"error_code,omitempty"`
	// RequestRawBytes and ResponseRawBytes are the sizes of a raw (non-JSON) request or response
	// body, e.g. a snapshot; raw bodies are never logged.
	RequestRawBytes  int `json:"request_raw_bytes,omitempty"`
	ResponseRawBytes int `json:"response_raw_bytes,omitempty"`
	// Facts are what the handler stated in clear (core.Response.AuditFacts):
	// a report's period, scope and manifest hash, an audit query's filter.
	Facts map[string]string `json:"facts,omitempty"`
}

// Identity is the person behind an entry's token, as the identity store
// resolved it for the request. It is written when the token has an entity
// or was created by another token.
type Identity struct {
	// Actor is the canonical actor name: the entity's name, or
	// "<mount>/<alias>" for an entity nobody named, or the token's display
	// name when it has no entity (core.Request.ActorName).
	Actor      string `json:"actor,omitempty"`
	EntityName string `json:"entity_name,omitempty"`
	// Alias is "<mount>/<alias name>" the token's login authenticated.
	Alias string `json:"alias,omitempty"`
	// Groups are the entity's groups (internal and external, direct and
	// inherited), by name.
	Groups []string `json:"groups,omitempty"`
	// CreatorEntityID and CreatorAccessor (HMAC'd like every accessor) name
	// the token that created the caller's token through auth/token/create.
	CreatorEntityID string `json:"creator_entity_id,omitempty"`
	CreatorAccessor string `json:"creator_accessor,omitempty"`
}

func (v *Vigil) empty() bool {
	return len(v.DenyReasons) == 0 && len(v.Advisories) == 0 && len(v.Flags) == 0 && v.PolicyError == "" &&
		v.Actor == "" && v.Identity == nil && !v.Sealed && v.Status == 0 && v.ErrorCode == "" && v.RequestRawBytes == 0 && v.ResponseRawBytes == 0 && len(v.Facts) == 0
}

// Options say how one device renders events.
type Options struct {
	// Salt hashes tokens, accessors and data strings. When Salt is nil and
	// Raw is false, tokens, accessors and data are omitted (used while
	// sealed, when the salt cannot be read).
	Salt *hmac.Salt
	// Raw logs everything in clear text (Vault's log_raw). Never in production.
	Raw bool
	// HMACAccessor hashes token accessors (Vault's default, hmac_accessor=true).
	HMACAccessor bool
	// Headers lists the request headers recorded (case-insensitive); values
	// are recorded in clear text, under lowercase names.
	Headers []string
	// HeaderRules, when set, returns the headers configured through
	// sys/config/auditing/request-headers when the entry is formatted; they
	// add to Headers, and a rule's HMAC flag holds for a header in both.
	HeaderRules func() []HeaderRule
}

// HeaderRule is one request header recorded in audit entries: its name
// (any case) and whether its values are HMAC'd like secrets.
type HeaderRule struct {
	Name string
	HMAC bool
}

// ErrNoRequest is returned for an event without a request.
var ErrNoRequest = errors.New("audit format: event has no request")

// Format renders ev as a single-line JSON object (no trailing newline).
// It never modifies ev. Errors: ErrNoRequest, or a JSON encoding error for
// data that cannot be encoded.
func Format(ev *core.AuditEvent, o Options) ([]byte, error) {
	return AppendFormat(make([]byte, 0, 2048), ev, o)
}

// AppendFormat appends what Format renders to dst and returns the extended
// slice (dst's bytes are kept; on error the result is nil). With a reused
// dst it allocates much less than Format.
func AppendFormat(dst []byte, ev *core.AuditEvent, o Options) ([]byte, error) {
	return appendEvent(dst, ev, o)
}

// Build returns the Entry Format would encode.
func Build(ev *core.AuditEvent, o Options) (*Entry, error) {
	if ev == nil || ev.Request == nil {
		return nil, ErrNoRequest
	}
	req := ev.Request
	f := formatter{o: o, omit: o.Salt == nil && !o.Raw}
	typ := ev.Type
	if typ != "response" {
		typ = "request"
	}
	e := &Entry{Time: ev.Time.UTC().Format(time.RFC3339Nano), Type: typ}
	e.Auth = f.callerAuth(req)
	e.Request = f.request(req)
	if ev.Err != nil {
		e.Error = ev.Err.Error()
	}
	if typ == "response" {
		e.Response = f.response(req, ev.Response)
	}
	if v := f.vigilOf(ev, typ); !v.empty() {
		e.Vigil = &v
	}
	return e, nil
}

// identityOf returns the "vigil.identity" member of an entry of type typ:
// the caller's identity, or for a login's response the identity the login
// resolved; nil when there is none to record.
func (f formatter) identityOf(ev *core.AuditEvent, typ string) *Identity {
	req := ev.Request
	if p := req.Principal; p != nil {
		if p.Identity == nil && p.CreatorAccessor == "" && p.CreatorEntityID == "" {
			return nil
		}
		id := &Identity{Actor: req.ActorName(), CreatorEntityID: p.CreatorEntityID, CreatorAccessor: f.accessor(p.CreatorAccessor)}
		if pi := p.Identity; pi != nil {
			id.EntityName, id.Alias, id.Groups = pi.EntityName, pi.Alias, pi.Groups
		}
		return id
	}
	if typ == "response" && ev.Response != nil && ev.Response.Auth != nil && ev.Response.Auth.Identity != nil {
		li := ev.Response.Auth.Identity
		return &Identity{Actor: li.Actor, EntityName: li.EntityName, Alias: li.Alias, Groups: li.Groups}
	}
	return nil
}

// vigilOf returns the "vigil" member of an entry of type typ for ev.
func (f formatter) vigilOf(ev *core.AuditEvent, typ string) Vigil {
	req := ev.Request
	v := Vigil{Sealed: ev.Sealed, RequestRawBytes: len(req.RawBody), Identity: f.identityOf(ev, typ)}
	if req.Internal {
		v.Actor = req.InternalActor
		if v.Actor == "" {
			v.Actor = "internal"
		}
	}
	if d := req.Decision; d != nil {
		v.DenyReasons, v.Advisories, v.PolicyError = d.DenyReasons, d.Advisories, d.Error
		if len(d.Flags) > 0 {
			v.Flags = d.Flags
		}
	}
	if len(req.Labels) > 0 {
		v.Flags = withLabels(v.Flags, req.Labels)
	}
	if ev.Err != nil {
		v.ErrorCode = string(core.CodeOf(ev.Err))
	}
	if typ == "response" {
		v.Status = status(ev.Response, ev.Err)
		if ev.Response != nil && ev.Response.Raw != nil {
			v.ResponseRawBytes = len(ev.Response.Raw.Body)
		}
		if ev.Response != nil && len(ev.Response.AuditFacts) > 0 {
			v.Facts = ev.Response.AuditFacts
		}
	}
	return v
}

// withLabels is flags with Vigil's labels (core.Request.Labels) added; a
// label overrides a policy flag of the same name, so no policy can forge
// one. flags is not modified.
func withLabels(flags, labels map[string]string) map[string]string {
	out := make(map[string]string, len(flags)+len(labels))
	for k, v := range flags {
		out[k] = v
	}
	for k, v := range labels {
		out[k] = v
	}
	return out
}

// status is the HTTP status the client gets, as core/httpapi computes it.
func status(resp *core.Response, err error) int {
	if err != nil {
		if resp != nil && resp.StatusCode != 0 {
			return resp.StatusCode
		}
		return core.HTTPStatus(core.CodeOf(err))
	}
	if resp != nil && resp.StatusCode != 0 {
		return resp.StatusCode
	}
	if resp.IsEmpty() {
		return http.StatusNoContent
	}
	return http.StatusOK
}

type formatter struct {
	o    Options
	omit bool // no salt: drop tokens, accessors and data
}

func (f formatter) token(s string) string {
	switch {
	case s == "" || f.omit:
		return ""
	case f.o.Raw:
		return s
	}
	return f.o.Salt.Hash(s)
}

func (f formatter) accessor(s string) string {
	switch {
	case s == "":
		return ""
	case f.o.Raw || !f.o.HMACAccessor:
		return s
	case f.omit:
		return ""
	}
	return f.o.Salt.Hash(s)
}

func (f formatter) data(d map[string]any, skip []string) map[string]any {
	switch {
	case len(d) == 0 || f.omit:
		return nil
	case f.o.Raw:
		return d
	}
	return f.o.Salt.Data(d, skip)
}

func (f formatter) callerAuth(req *core.Request) *Auth {
	a := &Auth{}
	if p := req.Principal; p != nil {
		a.ClientToken = f.token(p.ClientToken)
		a.Accessor = f.accessor(p.Accessor)
		a.DisplayName = p.DisplayName
		a.Policies, a.TokenPolicies = p.Policies, p.TokenPolicies
		if p.Identity != nil {
			a.IdentityPolicies = p.Identity.Policies
		}
		if len(p.Metadata) > 0 {
			a.Metadata = p.Metadata
		}
		a.EntityID = p.EntityID
		a.TokenType = p.TokenType
		a.TokenTTL = int64(p.TTL / time.Second)
		if !p.IssueTime.IsZero() {
			a.TokenIssueTime = p.IssueTime.UTC().Format(time.RFC3339)
		}
		if p.NumUsesLeft > 0 {
			a.RemainingUses = p.NumUsesLeft
		}
	} else if req.Internal {
		a.DisplayName = req.InternalActor
	}
	if d := req.Decision; d != nil {
		pr := &PolicyResults{Allowed: d.Allowed}
		for _, g := range d.GrantingPolicies {
			pr.GrantingPolicies = append(pr.GrantingPolicies, PolicyInfo{Name: g.Name, NamespaceID: policyNamespace(g), NamespacePath: g.NamespacePath, Type: g.Type})
		}
		a.PolicyResults = pr
	}
	return a
}

func (f formatter) request(req *core.Request) *Request {
	r := &Request{
		ID: req.ID, Operation: string(req.Operation), Path: req.Path,
		Namespace:  namespaceOf(req),
		RemoteAddr: req.RemoteAddr, RemotePort: req.RemotePort,
	}
	var skip []string
	if m := req.Mount; m != nil {
		r.MountType, r.MountPoint, r.MountAccessor, r.MountClass = m.Type, m.Path, m.Accessor, m.Class
		skip = m.Config.AuditNonHMACRequestKeys
	}
	if req.Principal != nil {
		r.ClientToken = f.token(req.Principal.ClientToken)
		r.ClientTokenAccessor = f.accessor(req.Principal.Accessor)
	} else if !req.Internal {
		r.ClientToken = f.token(req.ClientToken)
	}
	r.Data = f.data(req.Data, skip)
	r.Headers = f.headers(req.Headers)
	return r
}

// headers returns the recorded request headers under lowercase names:
// those of Options.Headers in clear text, those of Options.HeaderRules
// HMAC'd when their rule says so (omitted when no salt is available).
func (f formatter) headers(h http.Header) map[string][]string {
	if len(h) == 0 || (len(f.o.Headers) == 0 && f.o.HeaderRules == nil) {
		return nil
	}
	var out map[string][]string
	add := func(name string, hmac bool) {
		vals := h.Values(name)
		if len(vals) == 0 {
			return
		}
		if out == nil {
			out = map[string][]string{}
		}
		vs := append([]string(nil), vals...)
		if hmac && !f.o.Raw {
			if f.omit {
				return
			}
			for i, v := range vs {
				vs[i] = f.o.Salt.Hash(v)
			}
		}
		out[strings.ToLower(name)] = vs
	}
	var rules []HeaderRule
	if f.o.HeaderRules != nil {
		rules = f.o.HeaderRules()
	}
	for _, name := range f.o.Headers {
		if !slices.ContainsFunc(rules, func(r HeaderRule) bool { return strings.EqualFold(r.Name, name) }) {
			add(name, false)
		}
	}
	for _, r := range rules {
		add(r.Name, r.HMAC)
	}
	return out
}

func (f formatter) response(req *core.Request, resp *core.Response) *Response {
	r := &Response{}
	var skip []string
	if m := req.Mount; m != nil {
		r.MountType, r.MountPoint, r.MountAccessor, r.MountClass = m.Type, m.Path, m.Accessor, m.Class
		skip = m.Config.AuditNonHMACResponseKeys
	}
	if resp == nil {
		return r
	}
	r.Data = f.data(resp.Data, skip)
	if resp.Secret != nil && resp.Secret.LeaseID != "" {
		r.Secret = &Secret{LeaseID: resp.Secret.LeaseID}
	}
	if a := resp.Auth; a != nil {
		ra := &Auth{
			ClientToken: f.token(a.ClientToken), Accessor: f.accessor(a.Accessor), DisplayName: a.DisplayName,
			Policies: a.Policies, TokenPolicies: a.TokenPolicies, IdentityPolicies: a.IdentityPolicies, EntityID: a.EntityID,
			TokenType: a.TokenType, TokenTTL: int64(a.TTL / time.Second), NumUses: a.NumUses,
		}
		if len(a.Metadata) > 0 {
			ra.Metadata = a.Metadata
		}
		r.Auth = ra
	}
	if len(resp.Warnings) > 0 {
		r.Warnings = resp.Warnings
	}
	if w := resp.WrapInfo; w != nil {
		r.WrapInfo = &WrapInfo{TTL: w.TTL, Token: f.token(w.Token), Accessor: f.accessor(w.Accessor),
			CreationTime: w.CreationTime.UTC().Format(time.RFC3339Nano), CreationPath: w.CreationPath,
			WrappedAccessor: f.accessor(w.WrappedAccessor)}
	}
	return r
}

// HeaderNames normalises a configured header list: canonical MIME names,
// sorted, without duplicates or empties.
func HeaderNames(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, h := range in {
		h = http.CanonicalHeaderKey(strings.TrimSpace(h))
		if h == "" || seen[h] {
			continue
		}
		seen[h] = true
		out = append(out, h)
	}
	sort.Strings(out)
	return out
}
