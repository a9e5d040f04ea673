package reports

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigilsec/vigil/audit"
	"github.com/vigilsec/vigil/audit/chain"
	"github.com/vigilsec/vigil/compliance"
	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/reports/query"
)

// Options wire the report endpoints.
type Options struct {
	// Compliance gathers the server facts (devices, streams, verification,
	// mounts, snapshots, tokens, policies). Required.
	Compliance *compliance.Subsystem
	// Query returns the query backend (an error while it is unavailable,
	// e.g. sealed). Required.
	Query func() (query.Backend, error)
	// CatchUp, when set, brings the query backend up to date with the
	// audit log before a report is computed (querysvc.Subsystem.CatchUp;
	// the string is the report request's own id).
	CatchUp func(ctx context.Context, own string) error
	// Audit, when set, lets a request ask for a fresh chain verification
	// (verify=true) before the report is computed.
	Audit Verifier
	// Now overrides the server's clock.
	Now func() time.Time
	// Signer signs evidence bundles (format=bundle) with the node's
	// checkpoint key; *auditsvc.Subsystem implements it.
	Signer Signer
	// Keys gives the checkpoint public key the evidence view shows.
	Keys KeySource
}

// Verifier verifies the audit chain now; *auditsvc.Subsystem implements
// it.
type Verifier interface {
	Verify(ctx context.Context) (*audit.Verification, error)
	// Prove returns the inclusion proof of the line at seq of a file
	// device's log ("" for the only one) against the newest checkpoint.
	Prove(device string, seq uint64) (*chain.InclusionBundle, error)
}

// Host is what the reports subsystem uses of the server: its clock and the
// registration of its route. Everything else comes from the compliance and
// query subsystems.
type Host interface {
	Now() time.Time
	Version() string
	AddSysPart(framework.Part)
	// NamespaceByPath returns the namespace at a full path ("hospital-a/");
	// false when there is none.
	NamespaceByPath(path string) (core.Namespace, bool)
}

// Subsystem serves the reports:
//
//	GET sys/reports/hipaa?from=&to=&format=pdf|html|csv|json&scope=&business_hours=08-18&tz=UTC&top=10&verify=false&proofs=false
//	GET sys/reports/nrb?...
//
// The body is the report file itself (Content-Type per format). Not
// root-protected: grant an auditor `read` on sys/reports/*.
type Subsystem struct {
	opts    Options
	now     func() time.Time
	version string
	host    Host
}

// NewSubsystem returns the reports subsystem. List it after the compliance
// subsystem (and the query subsystem).
func NewSubsystem(opts Options) *Subsystem { return &Subsystem{opts: opts} }

// Name names the subsystem in logs and errors.
func (s *Subsystem) Name() string { return "reports" }

// Provision installs the sys/reports routes.
func (s *Subsystem) Provision(srv Host) error {
	if s.opts.Compliance == nil || s.opts.Query == nil {
		return errors.New("reports: the compliance subsystem and a query backend are required")
	}
	s.now = s.opts.Now
	if s.now == nil {
		s.now = srv.Now
	}
	s.host = srv
	s.version = srv.Version()
	srv.AddSysPart(routes{s})
	return nil
}

// Unsealed has nothing to start.
func (s *Subsystem) Unsealed(context.Context) error { return nil }

// Sealing has nothing to stop.
func (s *Subsystem) Sealing(context.Context) {}

// Generate computes a report on the running server.
// own is the id of the request asking for it (its own, still unanswered
// request entry is left out of the figures).
func (s *Subsystem) Generate(ctx context.Context, p Params, verify bool, own string) (*Report, error) {
	if verify && s.opts.Audit != nil {
		if _, err := s.opts.Audit.Verify(ctx); err != nil {
			return nil, fmt.Errorf("reports: verify the audit chain: %w", err)
		}
	}
	env, err := s.opts.Compliance.GatherFor(ctx, p.Namespace)
	if err != nil {
		return nil, err
	}
	b, err := s.opts.Query()
	if err != nil {
		return nil, core.Errorf(core.CodeUnavailable, "reports: query backend: %v", err)
	}
	if s.opts.CatchUp != nil {
		cctx, cancel := context.WithTimeout(ctx, catchUpWait)
		err := s.opts.CatchUp(cctx, own)
		cancel()
		if err != nil {
			return nil, core.Errorf(core.CodeUnavailable, "reports: bring the audit index up to date: %v", err)
		}
	}
	if p.GeneratedAt.IsZero() {
		p.GeneratedAt = s.now()
	}
	tagged, truncated, err := s.opts.Compliance.TaggedSecrets(ctx)
	if err != nil {
		return nil, err
	}
	if ns := p.Namespace.Path; ns != "" {
		tagged = slices.DeleteFunc(tagged, func(t compliance.TaggedSecret) bool { return !strings.HasPrefix(t.Mount, ns) })
	}
	return Generate(ctx, Source{Backend: b, Env: env, Tagged: tagged, TaggedTruncated: truncated, Exclude: own}, p)
}

// catchUpWait bounds how long a report waits for the audit index.
const catchUpWait = time.Minute

type routes struct{ s *Subsystem }

func (r routes) Routes() []framework.Route {
	str := &framework.FieldSchema{Type: framework.TypeString}
	return []framework.Route{{
		Pattern: `reports/(?P<kind>hipaa|nrb)/?`,
		Fields: func() map[string]*framework.FieldSchema {
			m := map[string]*framework.FieldSchema{"kind": str}
			for _, n := range ParamNames {
				m[n] = str
			}
			return m
		}(),
		Operations: map[core.Operation]framework.HandlerFunc{core.OpRead: r.report},
		Help:       "A HIPAA or NRB audit report over a period, as pdf, html, csv, json or a signed evidence bundle.",
	}, {
		Pattern:    `reports/evidence/?`,
		Operations: map[core.Operation]framework.HandlerFunc{core.OpRead: r.evidence},
		Help:       "The evidence an auditor checks first: last chain verification, signed checkpoints per node, coverage, checkpoint key.",
	}}
}

// ParseTime accepts RFC 3339 or a date (YYYY-MM-DD, midnight UTC).
func ParseTime(v string) (time.Time, error) { return ParseTimeIn(v, time.UTC) }

// ParseTimeIn accepts RFC 3339 or a date (YYYY-MM-DD, midnight in loc).
func ParseTimeIn(v string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.UTC(), nil
	}
	t, err := time.ParseInLocation("2006-01-02", v, loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("want YYYY-MM-DD or RFC 3339, got %q", v)
	}
	return t.UTC(), nil
}

// ParamNames are the report parameters (anything else is refused).
var ParamNames = []string{"from", "to", "fiscal_year", "format", "scope", "business_hours", "tz", "top", "rows", "verify", "proofs", "namespace"}

// ParamsFrom builds Params from string values (the API's query parameters
// and the CLI's flags): tz (default Asia/Kathmandu for NRB, UTC for
// HIPAA) is the zone of the period's dates, the per-day charts, the
// tables' times and the business hours; from/to (dates are midnight in tz;
// default: the 30 days before now) or fiscal_year (a Nepali fiscal year or
// quarter, "2081/82" or "2081/82-q1"); scope (comma-separated extra
// mounts), business_hours "HH-HH", top, rows.
func ParamsFrom(kind string, get func(string) string, now time.Time) (Params, error) {
	p := Params{Kind: kind, To: now.UTC()}
	p.TimeZone = strings.TrimSpace(get("tz"))
	if p.TimeZone == "" {
		p.TimeZone = "UTC"
		if kind == KindNRB {
			p.TimeZone = NRBTimeZone
		}
	}
	loc, err := time.LoadLocation(p.TimeZone)
	if err != nil {
		return p, fmt.Errorf("%w: tz: unknown time zone %q", ErrInvalid, p.TimeZone)
	}
	if fy := strings.TrimSpace(get("fiscal_year")); fy != "" {
		if get("from") != "" || get("to") != "" {
			return p, fmt.Errorf("%w: give either fiscal_year or from/to", ErrInvalid)
		}
		fp, err := ParseFiscalPeriod(fy, loc)
		if err != nil {
			return p, fmt.Errorf("%w: fiscal_year: %v", ErrInvalid, err)
		}
		p.From, p.To, p.Period = fp.From.UTC(), fp.To.UTC(), fp.Label
	} else {
		if v := strings.TrimSpace(get("to")); v != "" {
			t, err := ParseTimeIn(v, loc)
			if err != nil {
				return p, fmt.Errorf("%w: to: %v", ErrInvalid, err)
			}
			p.To = t
		}
		p.From = p.To.Add(-30 * 24 * time.Hour)
		if v := strings.TrimSpace(get("from")); v != "" {
			t, err := ParseTimeIn(v, loc)
			if err != nil {
				return p, fmt.Errorf("%w: from: %v", ErrInvalid, err)
			}
			p.From = t
		}
	}
	for _, m := range strings.Split(get("scope"), ",") {
		if m = strings.TrimSpace(m); m != "" {
			p.ScopeMounts = append(p.ScopeMounts, m)
		}
	}
	p.BusinessHours = BusinessHours{Start: 8, End: 18, Location: p.TimeZone}
	if v := strings.TrimSpace(get("business_hours")); v != "" {
		s, e, err := query.ParseBusinessHours(v)
		if err != nil {
			return p, fmt.Errorf("%w: business_hours: %v", ErrInvalid, err)
		}
		p.BusinessHours.Start, p.BusinessHours.End = s, e
	}
	for name, dst := range map[string]*int{"top": &p.Top, "rows": &p.Rows} {
		if v := strings.TrimSpace(get(name)); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 1000 {
				return p, fmt.Errorf("%w: %s: want 1-1000, got %q", ErrInvalid, name, v)
			}
			*dst = n
		}
	}
	return p, nil
}

func (r routes) report(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	if unknown := d.Unknown(); len(unknown) > 0 {
		return nil, core.Invalid("report: unknown parameter(s) %s (known: %s)", strings.Join(unknown, ", "), strings.Join(ParamNames, ", "))
	}
	format := strings.ToLower(strings.TrimSpace(d.String("format")))
	if format == "" {
		format = FormatJSON
	}
	if format != FormatBundle && ContentType(format) == "application/json" && format != FormatJSON {
		return nil, core.Invalid("unknown format %q (want %s or %s)", format, strings.Join(formatNames, ", "), FormatBundle)
	}
	if format == FormatBundle && r.s.opts.Signer == nil {
		return nil, core.Invalid("evidence bundles are not available: no signing key is wired")
	}
	p, err := ParamsFrom(d.String("kind"), d.String, r.s.now())
	p.GeneratedAt = r.s.now()
	// In a namespace, namespace= is relative to it and the report never
	// leaves it; in the root it names any namespace.
	if err == nil {
		p.Namespace, p.NamespaceQuery, err = r.s.scope(req.NS(), d.String("namespace"))
	}
	if err == nil {
		err = p.defaults()
	}
	if err != nil {
		return nil, core.Invalid("%s", strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": "))
	}
	verify, _ := strconv.ParseBool(d.String("verify"))
	rep, err := r.s.Generate(ctx, p, verify, req.ID)
	if err != nil {
		if errors.Is(err, ErrInvalid) {
			return nil, core.Invalid("%v", err)
		}
		return nil, err
	}
	if proofs, _ := strconv.ParseBool(d.String("proofs")); proofs {
		if err := r.s.attachProof(rep); err != nil {
			rep.Caveats = append(rep.Caveats, "No inclusion proof attached: "+err.Error())
		}
	}
	filters := map[string]string{}
	for _, n := range ParamNames {
		if v := strings.TrimSpace(d.String(n)); v != "" && n != "format" {
			filters[n] = v
		}
	}
	// What was asked and produced, in clear in the response's audit entry
	// (none of it is secret; an examiner reads it without sys/audit-hash).
	facts := map[string]string{"report.kind": rep.Kind, "report.from": rep.From.Format(time.RFC3339), "report.to": rep.To.Format(time.RFC3339),
		"report.time_zone": rep.TimeZone, "report.format": format, "report.scope": strings.Join(append(append([]string(nil), rep.Scope.Mounts...), rep.Scope.Secrets...), ",")}
	if ns := p.Namespace.Path; ns != "" {
		facts["report.namespace"] = ns
	}
	if rep.Period != "" {
		facts["report.period"] = rep.Period
	}
	if cp := rep.Checkpoint; cp != nil {
		facts["report.checkpoint"] = fmt.Sprintf("%s:%d:%s", cp.NodeID, cp.Seq, cp.Hash)
	}
	if rep.Coverage != nil {
		facts["report.coverage"] = rep.Coverage.Status
	}
	if format == FormatBundle {
		zb, msha, err := BuildBundle(rep, filters, "vigil "+r.s.version, r.s.opts.Signer)
		if err != nil {
			return nil, err
		}
		facts["report.manifest_sha256"] = msha
		return &core.Response{Raw: &core.RawBody{ContentType: "application/zip", Body: zb},
			Headers: map[string][]string{"Content-Disposition": {fmt.Sprintf(`attachment; filename="vigil-%s-%s-%s.zip"`, rep.Kind, rep.From.Format("20060102"), rep.To.Format("20060102"))},
				HeaderManifest: {msha}},
			AuditFacts: facts}, nil
	}
	var buf bytes.Buffer
	if err := Render(&buf, rep, format); err != nil {
		return nil, err
	}
	facts["report.sha256"] = digest("", buf.Bytes()).SHA256
	return &core.Response{Raw: &core.RawBody{ContentType: ContentType(format), Body: buf.Bytes()}, AuditFacts: facts}, nil
}

// HeaderManifest carries an evidence bundle's manifest hash.
const HeaderManifest = "X-Vigil-Evidence-Manifest"

// attachProof gives the report the inclusion proof of the last entry its
// checkpoint covers against the newest checkpoint: it ties every figure
// to the log the auditor can check, one line at a time.
func (s *Subsystem) attachProof(rep *Report) error {
	if s.opts.Audit == nil || rep.Checkpoint == nil {
		return errors.New("the report names no checkpoint")
	}
	b, err := s.opts.Audit.Prove("", rep.Checkpoint.Seq)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(b)
	if err != nil {
		return err
	}
	rep.Proof = raw
	return nil
}

// scope is the namespace a report asked for in namespace in covers, with
// the namespace= value its figures' queries carry.
func (s *Subsystem) scope(in core.Namespace, param string) (core.Namespace, string, error) {
	rel := query.CanonicalNamespace(param)
	if rel == "" {
		return in, "", nil
	}
	ns, ok := s.host.NamespaceByPath(in.Path + rel)
	if !ok {
		return core.Namespace{}, "", fmt.Errorf("%w: namespace %q not found", ErrInvalid, in.Path+rel)
	}
	return ns, rel, nil
}
