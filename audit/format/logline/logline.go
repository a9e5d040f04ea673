// Package logline reads one line of Vigil's local hash-chained audit log
// (docs/audit-format.md): the chain members at its end (seq, node_id,
// prev_hash, hash), found by scanning backwards without decoding the body,
// and, when asked, the whole line decoded into the Vault-schema entry
// (audit/format/vault) or the chain record it carries.
//
// Shippers (audit/ship) use Members on every line; the OCSF and CEF
// formats and ClickHouse's typed columns use Parse. Both are pure functions
// of their input: safe for concurrent use, no I/O, no clock.
package logline

import (
	"bytes"
	"errors"
	json "github.com/goccy/go-json"
	"strconv"
	"strings"
	"time"

	"github.com/vigilsec/vigil/audit/chain"
	"github.com/vigilsec/vigil/audit/format/vault"
)

// Chain member spellings, exactly as audit/chain writes them.
const (
	memSeq      = `"seq":`
	memNodeID   = `,"node_id":"`
	memPrevHash = `","prev_hash":"`
	memHash     = `,"hash":"`
	hashLen     = 64
	tailLen     = len(memHash) + hashLen + 2 // ,"hash":"<64>"}
)

// ErrMalformed is returned for a line whose chain members cannot be found.
var ErrMalformed = errors.New("audit line: malformed chain members")

// Members are the chain members of one line. NodeID, PrevHash and Hash
// alias the line passed to ScanMembers when it returns them as strings
// copied — see ScanMembers.
type Members struct {
	Seq      uint64
	NodeID   string
	PrevHash string
	Hash     string
}

// ScanMembers finds the chain members at the end of line (without its
// trailing newline). It checks the member spelling, not the hash: that is
// the verifier's job. The returned strings are copies. Errors: ErrMalformed.
func ScanMembers(line []byte) (Members, error) {
	var m Members
	n := len(line)
	if n < tailLen+len(`{"seq":1,"node_id":"a","prev_hash":"`)+hashLen+1 || line[0] != '{' || line[n-1] != '}' || line[n-2] != '"' {
		return m, ErrMalformed
	}
	canonEnd := n - tailLen
	if string(line[canonEnd:canonEnd+len(memHash)]) != memHash {
		return m, ErrMalformed
	}
	hash := line[n-2-hashLen : n-2]
	p := canonEnd - 1
	if line[p] != '"' {
		return m, ErrMalformed
	}
	prev := line[p-hashLen : p]
	p -= hashLen + len(memPrevHash)
	if p < 0 || string(line[p:p+len(memPrevHash)]) != memPrevHash {
		return m, ErrMalformed
	}
	q := p
	for q > 0 && nodeIDByte(line[q-1]) {
		q--
	}
	if p == q || q < len(memNodeID)+len(memSeq)+2 {
		return m, ErrMalformed
	}
	node := line[q:p]
	q -= len(memNodeID)
	if string(line[q:q+len(memNodeID)]) != memNodeID {
		return m, ErrMalformed
	}
	d := q
	for d > 0 && line[d-1] >= '0' && line[d-1] <= '9' {
		d--
	}
	if d == q || q-d > 20 || line[d] == '0' || d < len(memSeq)+1 {
		return m, ErrMalformed
	}
	seq, err := strconv.ParseUint(string(line[d:q]), 10, 64)
	if err != nil {
		return m, ErrMalformed
	}
	if string(line[d-len(memSeq):d]) != memSeq {
		return m, ErrMalformed
	}
	m.Seq, m.NodeID, m.PrevHash, m.Hash = seq, string(node), string(prev), string(hash)
	return m, nil
}

func nodeIDByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '.' || c == '_' || c == ':' || c == '-'
}

// recordPrefix starts every line the chain writes itself.
var recordPrefix = []byte(`{"type":"vigil.`)

// IsRecord reports whether line is a chain record (segment header,
// checkpoint, event) rather than a Vault entry.
func IsRecord(line []byte) bool { return bytes.HasPrefix(line, recordPrefix) }

// Time returns the time a line was written: the "time" member of a Vault
// entry, of an event or of a checkpoint, or the "created" member of a
// segment header. It scans for the first such member without decoding the
// line and reports false when none parses.
func Time(line []byte) (time.Time, bool) {
	for _, key := range [...]string{`"time":"`, `"created":"`} {
		i := bytes.Index(line, []byte(key))
		if i < 0 {
			continue
		}
		rest := line[i+len(key):]
		j := bytes.IndexByte(rest, '"')
		if j < 0 {
			continue
		}
		if t, err := time.Parse(time.RFC3339Nano, string(rest[:j])); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// Line is one decoded log line: a Vault entry (Entry.Type "request" or
// "response") or a chain record (Entry.Type "vigil.segment",
// "vigil.checkpoint", "vigil.event"; the matching payload is set), plus
// the chain members.
type Line struct {
	vault.Entry
	Segment    *chain.SegmentHeader `json:"segment,omitempty"`
	Event      *chain.Event         `json:"event,omitempty"`
	Checkpoint *CheckpointBody      `json:"checkpoint,omitempty"`
	Signature  string               `json:"signature,omitempty"`
	KeyID      string               `json:"key_id,omitempty"`

	Seq      uint64 `json:"seq"`
	NodeID   string `json:"node_id"`
	PrevHash string `json:"prev_hash"`
	Hash     string `json:"hash"`

	// At is the parsed time of the line (see Time); zero if none.
	At time.Time `json:"-"`
}

// CheckpointBody is the "checkpoint" member of a vigil.checkpoint record.
type CheckpointBody struct {
	NodeID   string `json:"node_id"`
	Seq      uint64 `json:"seq"`
	Hash     string `json:"hash"`
	TreeSize uint64 `json:"tree_size"`
	Root     string `json:"root"`
	Time     string `json:"time"`
}

// Parse decodes line. It fails with ErrMalformed when the chain members are
// missing, or with the JSON error when the line does not decode.
func Parse(line []byte) (*Line, error) {
	if _, err := ScanMembers(line); err != nil {
		return nil, err
	}
	l := &Line{}
	if err := json.Unmarshal(line, l); err != nil {
		return nil, err
	}
	switch {
	case l.Time != "":
		l.At, _ = time.Parse(time.RFC3339Nano, l.Time)
	case l.Segment != nil:
		l.At = l.Segment.Created
	case l.Event != nil:
		l.At = l.Event.Time
	case l.Checkpoint != nil:
		l.At, _ = time.Parse(time.RFC3339Nano, l.Checkpoint.Time)
	}
	return l, nil
}

// IsRecord reports whether the line is a chain record.
func (l *Line) IsRecord() bool { return len(l.Type) > 6 && l.Type[:6] == "vigil." }

// Request returns the request part (never nil).
func (l *Line) Request() *vault.Request {
	if l.Entry.Request == nil {
		return &vault.Request{}
	}
	return l.Entry.Request
}

// Auth returns the caller (never nil).
func (l *Line) Auth() *vault.Auth {
	if l.Entry.Auth == nil {
		return &vault.Auth{}
	}
	return l.Entry.Auth
}

// Vigil returns Vigil's additions (never nil).
func (l *Line) Vigil() *vault.Vigil {
	if l.Entry.Vigil == nil {
		return &vault.Vigil{}
	}
	return l.Entry.Vigil
}

// IsLogin reports whether the entry is a login: a request to an auth
// method's login path (auth/<mount>/login or auth/<mount>/login/<name>)
// or the OIDC callback (auth/<mount>/oidc/callback).
func (l *Line) IsLogin() bool {
	p := l.Request().Path
	if len(p) < len("auth/x/login") || p[:5] != "auth/" {
		return false
	}
	rest := p[5:]
	for i := 0; i < len(rest); i++ {
		if rest[i] == '/' {
			tail := rest[i+1:]
			// The OIDC callback is where a person's browser login ends.
			return tail == "login" || len(tail) > 6 && tail[:6] == "login/" || tail == "oidc/callback"
		}
	}
	return false
}

// Failed reports whether the entry records a failure: an error, a denial,
// or an HTTP status of 400 or more.
func (l *Line) Failed() bool {
	if l.Error != "" {
		return true
	}
	if a := l.Entry.Auth; a != nil && a.PolicyResults != nil && !a.PolicyResults.Allowed {
		return true
	}
	return l.Vigil().Status >= 400
}

// Denied reports whether authorization refused the request: a negative
// policy decision, HTTP 403 or the permission_denied error code.
func (l *Line) Denied() bool {
	if a := l.Entry.Auth; a != nil && a.PolicyResults != nil && !a.PolicyResults.Allowed {
		return true
	}
	vg := l.Vigil()
	return vg.Status == 403 || vg.ErrorCode == "permission_denied"
}

// Allowed reports the authorization decision: policy_results.allowed when
// the entry has one, otherwise true unless the entry failed (logins and
// other unauthenticated paths carry no decision).
func (l *Line) Allowed() bool {
	if a := l.Entry.Auth; a != nil && a.PolicyResults != nil {
		return a.PolicyResults.Allowed
	}
	return !l.Failed()
}

// Actor is the canonical name of whoever the entry is about — the one
// spelling queries, reports, OCSF (actor.user.name) and CEF (suser) use:
//
//  1. vigil.identity.actor: the entity's name, or "<mount>/<alias>" for
//     an entity nobody named (for a login, the identity it logged in);
//  2. else the caller's display name (for internal requests the Vigil
//     subsystem, e.g. "expiration");
//  3. else, for a login, the display name of the token it issued, or
//     "<mount>/<name>" from the login path (auth/userpass/login/mallory is
//     "userpass/mallory": a failed login is attributed to the alias it
//     tried);
//  4. else "".
func (l *Line) Actor() string {
	if id := l.Vigil().Identity; id != nil && id.Actor != "" {
		return id.Actor
	}
	if dn := l.Auth().DisplayName; dn != "" {
		return dn
	}
	if !l.IsLogin() {
		return ""
	}
	if r := l.Entry.Response; r != nil && r.Auth != nil && r.Auth.DisplayName != "" {
		return r.Auth.DisplayName
	}
	req := l.Request()
	return LoginActor(req.MountPoint, req.Path)
}

// LoginActor is the actor of a login that resolved no identity:
// "<mount>/<name>" for auth/<mount>/login/<name>, "" when the path names
// no one.
func LoginActor(mountPoint, path string) string {
	i := strings.LastIndex(path, "/login/")
	if i < 0 || i+len("/login/") >= len(path) {
		return ""
	}
	m := strings.TrimSuffix(strings.TrimPrefix(mountPoint, "auth/"), "/")
	if m == "" {
		m = strings.TrimPrefix(path[:i], "auth/")
	}
	return m + "/" + path[i+len("/login/"):]
}

// ActorEntityID is the entity id of the entry's actor: the caller's, or
// for a login the one the issued token belongs to.
func (l *Line) ActorEntityID() string {
	if id := l.Auth().EntityID; id != "" {
		return id
	}
	if l.IsLogin() {
		if r := l.Entry.Response; r != nil && r.Auth != nil {
			return r.Auth.EntityID
		}
	}
	return ""
}

// EntityName is vigil.identity.entity_name ("" when not recorded).
func (l *Line) EntityName() string {
	if id := l.Vigil().Identity; id != nil {
		return id.EntityName
	}
	return ""
}

// UserName is the best human name for the caller: the username metadata,
// else the display name; for a login, the authenticated user (the issued
// token's metadata or display name, else the last path segment).
func (l *Line) UserName() string {
	a := l.Auth()
	if l.IsLogin() {
		if r := l.Entry.Response; r != nil && r.Auth != nil {
			if u := r.Auth.Metadata["username"]; u != "" {
				return u
			}
			if r.Auth.Metadata["role_name"] != "" {
				return r.Auth.Metadata["role_name"]
			}
			if r.Auth.DisplayName != "" {
				return r.Auth.DisplayName
			}
		}
		p := l.Request().Path
		// auth/<mount>/login/<name> names the user in its path.
		if i := bytes.LastIndexByte([]byte(p), '/'); i >= 0 && bytes.HasSuffix([]byte(p[:i]), []byte("/login")) {
			return p[i+1:]
		}
	}
	if u := a.Metadata["username"]; u != "" {
		return u
	}
	return a.DisplayName
}
