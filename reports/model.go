// Package reports builds the auditor's reports — HIPAA Security Rule and
// Nepal Rastra Bank — from the audit trail, and renders them as JSON, CSV
// (RFC 4180), HTML (with inline SVG charts) and PDF.
//
// Every figure taken from audit records is computed from query.Backend
// (Scan and Query) and carries the query that reproduces it through
// GET /v1/sys/audit/query, plus, where the query API cannot express the
// whole rule, the name of a predicate (see Match) applied to the records
// the query returns. An auditor — and the end-to-end test — can recompute
// every number.
package reports

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/vigilsec/vigil/compliance"
	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/reports/query"
)

// Report kinds.
const (
	KindHIPAA = "hipaa"
	KindNRB   = "nrb"
)

// Section results.
const (
	ResultPass      = "pass"      // the evidence meets the control's technical side
	ResultAttention = "attention" // reviewable events or weaknesses the reviewer must look at
	ResultFail      = "fail"      // the evidence shows the control is not met
	ResultManual    = "manual"    // Vigil cannot show it; the reviewer must attach evidence
	ResultInfo      = "info"      // facts for the review, no judgement
	// ResultPartial and ResultNoData replace a judgement drawn from audit
	// records when the log held does not cover the whole period (or any of
	// it): a period the log does not cover is never a PASS.
	ResultPartial = "partial"
	ResultNoData  = "no_data"
)

// ResultLabel is a result as printed: PASS, PARTIAL, NO DATA, ...
func ResultLabel(r string) string {
	if r == ResultNoData {
		return "NO DATA"
	}
	return strings.ToUpper(r)
}

// Report is a generated report. It is deterministic for a given log,
// server state and Params.
type Report struct {
	Kind        string    `json:"kind"`
	Title       string    `json:"title"`
	Regulation  string    `json:"regulation"`
	From        time.Time `json:"from"`
	To          time.Time `json:"to"`
	GeneratedAt time.Time `json:"generated_at"`
	NodeID      string    `json:"node_id,omitempty"`
	// TimeZone is the zone of the period's boundaries, the per-day charts
	// and every time in the tables (Asia/Kathmandu for NRB, UTC for HIPAA
	// unless asked otherwise); Period names a fiscal period when one was
	// asked for ("FY 2081/82 Q1 (Shrawan-Ashwin)").
	TimeZone string `json:"time_zone"`
	Period   string `json:"period,omitempty"`
	// Coverage is what the log held covers of the period, per node.
	Coverage *Coverage `json:"coverage,omitempty"`
	// ManifestSHA256 is the SHA-256 of the evidence bundle's manifest.json
	// (set when the report is rendered into a bundle; the PDF prints it on
	// its cover).
	ManifestSHA256 string `json:"manifest_sha256,omitempty"`
	// Backend is the query backend the figures came from.
	Backend string `json:"backend"`
	// Checkpoint is the signed checkpoint the record scan was computed
	// against.
	Checkpoint    *query.CheckpointRef `json:"checkpoint,omitempty"`
	Scope         Scope                `json:"scope"`
	BusinessHours BusinessHours        `json:"business_hours"`
	Caveats       []string             `json:"caveats"`
	Summary       []Figure             `json:"summary"`
	Sections      []Section            `json:"sections"`
	Charts        []Chart              `json:"charts"`
	// Controls are the cited controls, with their confidence labels.
	Controls []compliance.Control `json:"controls"`
	// Namespace is the path of the namespace the report covers (absent for
	// the whole server).
	Namespace string `json:"namespace,omitempty"`
	// Proof (proofs=true) is the RFC 9162 inclusion proof of the line at
	// Checkpoint.Seq against the newest signed checkpoint (`vigil audit
	// verify-proof`).
	Proof json.RawMessage `json:"proof,omitempty"`
}

// Scope is what the report's access figures cover.
type Scope struct {
	// Tags are the mount options that put a mount in scope (phi=true,
	// regulated=true).
	Tags []string `json:"tags"`
	// Mounts are the mounts in scope, e.g. "phi/".
	Mounts []string `json:"mounts"`
	// Secrets are the KV v2 secrets in scope through their custom_metadata
	// (on mounts not in scope as a whole), as mount + key, e.g.
	// "secret/patients/123"; a request is theirs when its path is
	// <mount><one segment>/<key> (data/, metadata/, delete/, ...).
	Secrets []string `json:"secrets,omitempty"`
	Note    string   `json:"note"`
}

// Check reproduces a number: the sum, over Queries, of the records GET
// /v1/sys/audit/query?<query> returns (every page) that satisfy the
// predicate Match ("" = all).
type Check struct {
	Queries []string `json:"queries,omitempty"`
	Match   string   `json:"match,omitempty"`
	// Distinct, when set ("actor"), makes the number the count of
	// distinct DistinctKey values among those records instead of their
	// count (`vigil audit query --distinct actor`).
	Distinct string `json:"distinct,omitempty"`
}

// DistinctKey is the person a record counts as for Check.Distinct
// "actor": its entity when it has one, else Actor(r) (the CLI's
// --distinct actor groups the same way).
func DistinctKey(r query.Record) string {
	if r.EntityID != "" {
		return "entity " + r.EntityID
	}
	return Actor(r)
}

// Count applies the check to the records its queries returned: how many
// satisfy Match, or how many distinct DistinctKey values they have.
func (c *Check) Count(recs []query.Record, bh BusinessHours) int64 {
	seen := map[string]bool{}
	var n int64
	for _, r := range recs {
		if !Match(c.Match, r, bh) {
			continue
		}
		if c.Distinct != "" {
			seen[DistinctKey(r)] = true
			continue
		}
		n++
	}
	if c.Distinct != "" {
		return int64(len(seen))
	}
	return n
}

// Figure is one number (or fact) of a section.
type Figure struct {
	Key   string `json:"key"`
	Label string `json:"label"`
	Count int64  `json:"count"`
	// Text, when set, is shown instead of Count (facts that are not counts).
	Text  string `json:"text,omitempty"`
	Check *Check `json:"check,omitempty"`
}

// Display is the figure as printed.
func (f Figure) Display() string {
	if f.Text != "" {
		return f.Text
	}
	return itoa(f.Count)
}

// Table is a table of a section. When RowChecks is set, RowChecks[i]
// reproduces the number in column CountCol of row i.
type Table struct {
	ID        string     `json:"id"`
	Title     string     `json:"title"`
	Columns   []string   `json:"columns"`
	Rows      [][]string `json:"rows"`
	CountCol  int        `json:"count_col,omitempty"`
	RowChecks []*Check   `json:"row_checks,omitempty"`
	// Empty is printed when Rows is empty.
	Empty string `json:"empty,omitempty"`
	// Shown is how many rows the HTML and PDF print (0: all); the rest are
	// summed up in one aggregate row (Rest). The CSV and JSON keep every
	// row.
	Shown int        `json:"shown,omitempty"`
	Rest  *TableRest `json:"rest,omitempty"`
}

// TableRest sums up the rows a table does not print.
type TableRest struct {
	Rows int `json:"rows"`
	// Count is the sum of the count column over those rows (0 without one).
	Count int64 `json:"count,omitempty"`
	// By groups them by mount or path prefix (largest first, at most a
	// few), when the table has a path column.
	By []Group `json:"by,omitempty"`
}

// Group is one line of an aggregate: a prefix and its sum.
type Group struct {
	Prefix string `json:"prefix"`
	Rows   int    `json:"rows"`
	Count  int64  `json:"count"`
}

// Visible returns the rows the HTML and PDF print.
func (t Table) Visible() [][]string {
	if t.Shown > 0 && len(t.Rows) > t.Shown {
		return t.Rows[:t.Shown]
	}
	return t.Rows
}

// ControlRef is a cited control, as printed in a section.
type ControlRef struct {
	ID         string `json:"id"`
	Citation   string `json:"citation"`
	Title      string `json:"title"`
	Confidence string `json:"confidence"`
}

// Section is one control area: the regulation and control, the evidence
// and the result.
type Section struct {
	ID         string       `json:"id"`
	Title      string       `json:"title"`
	Controls   []ControlRef `json:"controls"`
	Result     string       `json:"result"`
	ResultText string       `json:"result_text"`
	Figures    []Figure     `json:"figures"`
	Tables     []Table      `json:"tables,omitempty"`
	Notes      []string     `json:"notes,omitempty"`
	// Charts are IDs of Report.Charts shown with this section.
	Charts []string `json:"charts,omitempty"`
}

// Chart kinds.
const (
	ChartStacked = "stacked" // vertical bars per label, series stacked
	ChartBars    = "hbars"   // horizontal bars, one series
	ChartLines   = "lines"   // one line per series
	ChartHeat    = "heat"    // rows = series, columns = labels
)

// Chart is data for a chart; the renderers draw it.
type Chart struct {
	ID     string   `json:"id"`
	Title  string   `json:"title"`
	Kind   string   `json:"kind"`
	Labels []string `json:"labels"`
	Series []Series `json:"series"`
}

// Series is one named row of values (len = len(Labels)).
type Series struct {
	Name   string  `json:"name"`
	Values []int64 `json:"values"`
}

// BusinessHours define off-hours access: outside [Start, End) local hours
// on Monday to Friday in Location (the audit query's off_hours filter).
type BusinessHours = query.BusinessHours

// Params choose what a report covers.
type Params struct {
	Kind string
	// From is inclusive, To exclusive.
	From, To time.Time
	// ScopeMounts adds mounts to the scope besides those tagged phi=true
	// or regulated=true.
	ScopeMounts []string
	// BusinessHours default to 08-18 Monday-Friday in TimeZone.
	BusinessHours BusinessHours
	// TimeZone is the zone of the period, the per-day charts and the
	// tables' times (default: Asia/Kathmandu for NRB, UTC for HIPAA).
	TimeZone string
	// Period labels a fiscal period (ParseFiscalPeriod) whose dates are
	// From and To.
	Period string
	// GeneratedAt is stamped on the report (default: now).
	GeneratedAt time.Time
	// Top is how many identities the top-identities chart shows (default
	// 10) and paths the heat map shows (at least 15).
	Top int
	// Namespace scopes the report to a namespace and its children (the
	// zero value: the whole server). Its access figures count requests
	// made there, its identity and token facts are that namespace's; the
	// audit trail's own evidence (devices, verification, retention) is the
	// server's, which covers every namespace.
	Namespace core.Namespace
	// NamespaceQuery is the namespace= parameter the figures' audit
	// queries carry ("" when the report was asked for in the namespace it
	// covers: a query there is scoped to it already).
	NamespaceQuery string
	// Rows is how many rows each table prints in the HTML and PDF (default
	// 25); the CSV lists every row.
	Rows int
}

// RetentionYears is HIPAA 164.316(b)(2)(i)'s documentation period, applied
// to the logs by interpretation.
const RetentionYears = 6

// Source is what a report is computed from: the records through the query
// backend, and the server's state (devices, streams, verification, mounts,
// snapshots, tokens, policies) as the compliance checks gather it.
type Source struct {
	Backend query.Backend
	Env     *compliance.Env
	// Tagged are the KV v2 secrets tagged phi=true or regulated=true in
	// their custom_metadata; TaggedTruncated says the list was cut.
	Tagged          []compliance.TaggedSecret
	TaggedTruncated bool
	// Exclude is a request id left out of every figure: the unanswered
	// request entry of the request asking for the report.
	Exclude string
}
