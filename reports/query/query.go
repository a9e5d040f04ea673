// NOTE for the reports engineer (changes to this interface, newest first):
//
//   - Added Record.Actor (the canonical actor name, logline.Line.Actor)
//     and Record.EntityName; Filter.Actor also matches them, and
//     Filter.ActorEntityIDs (filled by querysvc from the identity store)
//     adds the entity ids the actor stands for. CSV gains two trailing
//     columns, actor and entity_name. Matcher.MatchActor takes the record.
//   - Record.Time is the time of the entry the record was built from (the
//     response entry's time, or the request entry's for Incomplete records),
//     not a separate "request time": a response entry does not repeat the
//     request entry's time, and both backends must agree without joining the
//     two entries. Filter.Since/Until apply to it. The difference is the
//     request's duration (usually well under a second).
//   - Results are computed over the log up to the checkpoint they name: a
//     record is returned only if the entry it is built from has seq <=
//     Checkpoint.Seq. A request entry counts as Incomplete when no response
//     entry for its request id is in the log as indexed (embedded) or shipped
//     (ClickHouse).
//   - Added (no renames or removals): Record.Status, Record.ErrorCode;
//     Result.Checkpoints (one per node, for a ClickHouse table fed by several
//     nodes), Result.Verification (how the checkpoint and the records under
//     it were verified), Result.Warnings (index lag, stopped index, ...).
//   - Helpers in this package: FromLine/ParseLine (record building),
//     Filter.Compile → *Matcher with Match(&rec) (the filter semantics
//     below, exactly as both backends apply them — an in-memory test
//     backend can use it instead of re-implementing them), Compare (result
//     order), FilterFromParams (the API's parameters, since/until as
//     ParseTime reads "24h", "7d", RFC 3339), EncodeCursor/DecodeCursor,
//     WriteCSV/CSVHeader/CSVRow (RFC 4180), OCSF.
//   - querysvc.Subsystem.Backend() hands the running backend to reports;
//     querysvc.AuditorPolicy is the documented auditor policy;
//     querytest.Run is the conformance suite (and querytest.Traffic /
//     MustLog write realistic audited traffic through the real broker).
//
// Package query answers the auditor's question — who accessed which
// secret, when, with what operation, and was it allowed — over the audit
// trail, through one interface with two backends: an embedded index beside
// the local audit segments (the default single node) and ClickHouse (when a
// ClickHouse audit stream is configured). Both return identical results for
// the same log.
package query

import (
	"context"
	"encoding/json"
	"time"
)

// Filter selects audit records. Zero values match everything.
type Filter struct {
	// Since is inclusive, Until exclusive (Record.Time).
	Since, Until time.Time
	// Actor matches the canonical actor name (Record.Actor), the entity
	// name, the display name, the entity ID, or the token accessor (either
	// its HMAC'd form as stored, "hmac-sha256:…", or — when the backend can
	// hash it with the device salt — the raw accessor).
	Actor string
	// ActorEntityIDs are further entity ids Actor stands for, filled in by
	// the server from its identity store: the entity Actor names (by name
	// or id) and every entity merged into it. Records of those entities
	// match, whatever name they were recorded under and whichever auth
	// method the person used. Ignored when Actor is empty.
	ActorEntityIDs []string
	// Path is a prefix ("secret/data/prod/") or, when it contains any of
	// * ? [, a glob matched against the whole path (path.Match semantics,
	// with "*" also crossing "/" when written as "**").
	Path string
	// Operation is one of read, create, update, patch, delete, list.
	Operation string
	// Allowed filters on the authorization decision.
	Allowed *bool
	// Mount is a mount point such as "secret/".
	Mount string
	// NodeID restricts to one node's chain.
	NodeID string
	// Flag selects records carrying a decision flag (e.g. "break_glass").
	Flag string
	// ExactPath compares Path with the whole path instead of as a prefix.
	ExactPath bool
	// RemoteAddr is the client address, exact or a CIDR prefix
	// ("203.0.113.0/24").
	RemoteAddr string
	// RequestID selects one request.
	RequestID string
	// Policy selects requests whose token carried the policy (root finds
	// every request made with a root token).
	Policy string
	// Status is the HTTP status answered (403, 500, ...); ErrorCode the
	// error's code (permission_denied, invalid_request, ...).
	Status    int
	ErrorCode string
	// Login is "ok" or "failed": logins through an auth method (token
	// logins excluded) that succeeded, or that were refused or failed.
	Login string
	// AuthMethod is the auth method behind the request (AuthMethodOf).
	AuthMethod string
	// Entity is an exact entity id.
	Entity string
	// Category is "privileged" or "privileged:<policy|audit|seal|mounts|snapshot>"
	// (PrivilegedCategory).
	Category string
	// OffHours selects requests outside (true) or inside (false)
	// BusinessHours; BusinessHours default to 08-18 Monday-Friday UTC.
	OffHours      *bool
	BusinessHours BusinessHours
	// Incomplete selects records built from a request entry alone (true)
	// or from a response entry (false).
	Incomplete *bool
	// Has lists fields the record must have recorded: "actor", "address".
	Has []string
	// Preflight is "" (all records), "exclude" or "only" (IsPreflight).
	Preflight string
	// Namespace scopes the records to requests made in a namespace and its
	// descendants: a namespace path such as "hospital-a/" (Record.Namespace
	// has it as a prefix). "" and "root" select every namespace.
	Namespace string
	// Limit caps the records returned by Query (default 1000, max 100000).
	Limit int
	// After continues a previous Query (the Next cursor it returned).
	After string
}

// Record is one audited request, built from its response entry (which
// repeats the request and auth blocks) or, when the response entry is
// missing (crash, or the response could not be recorded), from the request
// entry alone (Incomplete is then true).
type Record struct {
	NodeID      string    `json:"node_id"`
	Seq         uint64    `json:"seq"` // seq of the entry the record was built from
	RequestID   string    `json:"request_id"`
	Time        time.Time `json:"time"` // time of the entry the record was built from (see the note above)
	DisplayName string    `json:"display_name"`
	// Actor is the canonical name of the person behind the request (the
	// entity's name, or "<mount>/<alias>" for an entity nobody named, else
	// the display name; see logline.Line.Actor), and EntityName the
	// entity's name when the entry recorded one.
	Actor      string `json:"actor,omitempty"`
	EntityName string `json:"entity_name,omitempty"`
	EntityID   string `json:"entity_id,omitempty"`
	Accessor   string `json:"accessor,omitempty"` // as stored (HMAC'd unless hmac_accessor=false)
	RemoteAddr string `json:"remote_address,omitempty"`
	RemotePort int    `json:"remote_port,omitempty"`
	Operation  string `json:"operation"`
	Path       string `json:"path"`
	MountPoint string `json:"mount_point,omitempty"`
	MountType  string `json:"mount_type,omitempty"`
	// Namespace is the path of the namespace the request was made in
	// (request.namespace.path: "hospital-a/"), "" for the root namespace.
	Namespace string `json:"namespace,omitempty"`
	Allowed   bool   `json:"allowed"`
	// Error is the error returned to the client ("" on success).
	Error string `json:"error,omitempty"`
	// Status is the HTTP status answered (response entries; 0 when not
	// recorded) and ErrorCode the error's code (e.g. "permission_denied").
	Status           int               `json:"status,omitempty"`
	ErrorCode        string            `json:"error_code,omitempty"`
	GrantingPolicies []string          `json:"granting_policies,omitempty"`
	DenyReasons      []string          `json:"deny_reasons,omitempty"`
	Flags            map[string]string `json:"flags,omitempty"`
	Policies         []string          `json:"policies,omitempty"`
	TokenType        string            `json:"token_type,omitempty"`
	// Internal is set for requests Vigil made itself (lease expiry); Actor
	// then names the subsystem.
	Internal   bool `json:"internal,omitempty"`
	Incomplete bool `json:"incomplete,omitempty"`
	// Preflight marks a client preflight request (IsPreflight), set in
	// API answers; timelines hide such records unless asked.
	Preflight bool `json:"preflight,omitempty"`
	// Proof, when asked for (proofs=true), is the RFC 9162 inclusion proof
	// of the entry (line Seq) against the result's checkpoint: with it one
	// record can be checked without the rest of the log (`vigil audit
	// verify-proof`). Records of other nodes carry none.
	Proof json.RawMessage `json:"proof,omitempty"`
}

// CheckpointRef identifies the signed checkpoint a result was computed
// against: every record returned has seq ≤ Seq on its node and the log up
// to Seq verified against Hash and Signature when the result was built.
type CheckpointRef struct {
	NodeID    string    `json:"node_id"`
	Seq       uint64    `json:"seq"`
	Hash      string    `json:"hash"`
	TreeSize  uint64    `json:"tree_size"`
	Root      string    `json:"root"`
	Time      time.Time `json:"time"`
	Signature string    `json:"signature"`
	KeyID     string    `json:"key_id"`
}

// Result is one page of records.
type Result struct {
	Records    []Record       `json:"records"`
	Checkpoint *CheckpointRef `json:"checkpoint,omitempty"`
	Backend    string         `json:"backend"` // "embedded" or "clickhouse"
	Next       string         `json:"next,omitempty"`
	Scanned    int64          `json:"scanned"`
	// Checkpoints has one checkpoint per node whose records were searched
	// (ClickHouse tables may hold several nodes' chains); Checkpoint is the
	// one for this node (or the only one).
	Checkpoints []CheckpointRef `json:"checkpoints,omitempty"`
	// Verification says how the checkpoint and the records under it were
	// verified, in one sentence an auditor can quote.
	Verification string `json:"verification,omitempty"`
	// Warnings report conditions that limit the result (an index catching
	// up or stopped, records older than the oldest segment dropped, ...).
	Warnings []string `json:"warnings,omitempty"`
}

// Backend answers queries. Implementations are safe for concurrent use.
// Records are returned in (time, node_id, seq) order.
type Backend interface {
	// Query returns up to f.Limit records and a cursor for the next page.
	Query(ctx context.Context, f Filter) (*Result, error)
	// Scan calls fn for every matching record (no limit), in order, and
	// returns the checkpoint the scan was computed against. Reports use it.
	Scan(ctx context.Context, f Filter, fn func(Record) error) (*CheckpointRef, error)
	// Name is "embedded" or "clickhouse".
	Name() string
}
