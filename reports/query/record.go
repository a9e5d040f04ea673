package query

import (
	"bytes"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/vigilsec/vigil/audit/format/logline"
	"github.com/vigilsec/vigil/audit/format/vault"
)

// Kind classifies a log line for record building.
type Kind int

const (
	// KindOther is a chain record (segment header, checkpoint, event) or a
	// line that is not a Vault entry.
	KindOther Kind = iota
	// KindRequest is a request entry: it becomes a record (Incomplete) only
	// when no response entry for its request id follows.
	KindRequest
	// KindResponse is a response entry: one record per request.
	KindResponse
)

// FromLine builds the record of one decoded log line. ok is false for
// chain records and anything that is not a request or response entry.
//
// Fields: the actor (display name, entity id, accessor) is the caller's
// auth block; for a login (auth/<mount>/login...) without a caller it is
// the identity the login issued (response.auth), as ClickHouse's typed
// columns have it (audit/ship/clickhouse.RowOf). Actor is
// logline.Line.Actor, EntityName vigil.identity.entity_name. Allowed is the policy
// decision when the entry carries one, else true unless the request failed
// (logins and other unauthenticated paths: a failed login is not allowed).
// Internal is set when the entry names a Vigil subsystem as its actor (lease
// expiry); DisplayName is then that subsystem.
func FromLine(l *logline.Line) (Record, bool) {
	if l.Type != "request" && l.Type != "response" {
		return Record{}, false
	}
	req, auth, vg := l.Request(), l.Auth(), l.Vigil()
	r := Record{
		NodeID: l.NodeID, Seq: l.Seq, RequestID: req.ID, Time: normTime(l.At),
		DisplayName: auth.DisplayName, Actor: l.Actor(), EntityName: l.EntityName(), EntityID: auth.EntityID, Accessor: auth.Accessor,
		RemoteAddr: req.RemoteAddr, RemotePort: req.RemotePort,
		Operation: req.Operation, Path: req.Path, MountPoint: req.MountPoint, MountType: req.MountType, Namespace: namespacePath(req),
		Allowed: l.Allowed(), Error: l.Error, Status: vg.Status, ErrorCode: vg.ErrorCode,
		Policies: nonEmpty(auth.Policies), TokenType: auth.TokenType,
		DenyReasons: nonEmpty(vg.DenyReasons), Internal: vg.Actor != "",
		Incomplete: l.Type == "request",
	}
	if l.IsLogin() && l.Entry.Response != nil && l.Entry.Response.Auth != nil {
		ra := l.Entry.Response.Auth
		r.DisplayName, r.EntityID, r.Accessor = or(r.DisplayName, ra.DisplayName), or(r.EntityID, ra.EntityID), or(r.Accessor, ra.Accessor)
	}
	if pr := auth.PolicyResults; pr != nil {
		for _, g := range pr.GrantingPolicies {
			r.GrantingPolicies = append(r.GrantingPolicies, g.Name)
		}
	}
	if len(vg.Flags) > 0 {
		r.Flags = make(map[string]string, len(vg.Flags))
		for k, v := range vg.Flags {
			r.Flags[k] = v
		}
	}
	return r, true
}

// Parser builds records from raw log lines. Its fast path (scan.go) reads
// the members a record needs in one pass, without reflection or an
// allocation per field — the embedded index's build cost must stay a small
// fraction of the audit write cost — and hands the line to the exact path,
// logline.Parse (encoding/json) + FromLine, whenever a shortcut could
// disagree with it (\u escapes, invalid UTF-8, nulls, repeated members, a
// time in another layout, malformed JSON). Both paths give the same Record
// for the same line (tested, and fuzzed). A Parser is not safe for
// concurrent use; the zero value is ready.
type Parser struct {
	sc scan
	f  Fields
}

// Fields are a record's fields as the Parser found them. Byte slices alias
// the parser's memory and are valid until its next call.
type Fields struct {
	Seq      uint64
	NodeID   []byte
	UnixNano int64 // 0 when the entry has no time
	HasTime  bool

	RequestID, DisplayName, Actor, EntityName, EntityID, Accessor, RemoteAddr, Operation, Path,
	MountPoint, MountType, Error, ErrorCode, TokenType []byte
	// Namespace is request.namespace.path ("" in the root namespace).
	Namespace                     []byte
	RemotePort, Status            int
	Allowed, Internal, Incomplete bool
	// Sealed marks an entry made while the server was sealed (a request
	// rejected then has a request and a response entry, like any other).
	Sealed                          bool
	Granting, DenyReasons, Policies [][]byte
	// FlagNames and FlagValues are the decision flags, sorted by name.
	FlagNames, FlagValues [][]byte
}

// ParseLine builds the record of one raw line (without its newline). kind
// is KindOther (and the record empty) for chain records. Errors: the line's
// chain members or JSON are malformed.
func ParseLine(line []byte) (Record, Kind, error) {
	var p Parser
	return p.Parse(line)
}

// Parse is ParseLine reusing the parser's buffers.
func (p *Parser) Parse(line []byte) (Record, Kind, error) {
	f, kind, err := p.ParseFields(line)
	if err != nil || kind == KindOther {
		return Record{}, kind, err
	}
	return f.Record(), kind, nil
}

// Record converts the fields into a Record (copying every string).
func (f *Fields) Record() Record {
	r := Record{
		NodeID: string(f.NodeID), Seq: f.Seq, RequestID: string(f.RequestID),
		DisplayName: string(f.DisplayName), Actor: string(f.Actor), EntityName: string(f.EntityName), EntityID: string(f.EntityID),
		Accessor: string(f.Accessor), RemoteAddr: string(f.RemoteAddr), RemotePort: f.RemotePort, Operation: string(f.Operation), Path: string(f.Path),
		MountPoint: string(f.MountPoint), MountType: string(f.MountType), Namespace: string(f.Namespace), Allowed: f.Allowed, Error: string(f.Error),
		Status: f.Status, ErrorCode: string(f.ErrorCode), GrantingPolicies: toStrings(f.Granting),
		DenyReasons: toStrings(f.DenyReasons), Policies: toStrings(f.Policies), TokenType: string(f.TokenType),
		Internal: f.Internal, Incomplete: f.Incomplete,
	}
	if f.HasTime {
		r.Time = time.Unix(0, f.UnixNano).UTC()
	}
	if len(f.FlagNames) > 0 {
		r.Flags = make(map[string]string, len(f.FlagNames))
		for i, k := range f.FlagNames {
			r.Flags[string(k)] = string(f.FlagValues[i])
		}
	}
	return r
}

func toStrings(b [][]byte) []string {
	if len(b) == 0 {
		return nil
	}
	out := make([]string, len(b))
	for i, x := range b {
		out[i] = string(x)
	}
	return out
}

// ParseFields decodes a line's record fields. kind is KindOther for chain
// records (the fields are then meaningless).
func (p *Parser) ParseFields(line []byte) (*Fields, Kind, error) {
	f := &p.f
	if logline.IsRecord(line) {
		return f, KindOther, nil
	}
	if bytes.Contains(line, []byte(`\u`)) || !utf8.Valid(line) {
		return p.slowFields(line)
	}
	seq, node, _, _, ok := ChainMembers(line)
	if !ok {
		return p.slowFields(line) // reports the malformed line
	}
	*f = Fields{Seq: seq, NodeID: node, Granting: f.Granting[:0], DenyReasons: f.DenyReasons[:0], Policies: f.Policies[:0],
		FlagNames: f.FlagNames[:0], FlagValues: f.FlagValues[:0]}
	kind, ok := p.fastFields(line, f)
	if !ok {
		return p.slowFields(line)
	}
	return f, kind, nil
}

// ChainMembers finds the chain members at the end of a line without
// copying: logline.ScanMembers's checks, returning slices of line.
func ChainMembers(line []byte) (seq uint64, node, prev, hash []byte, ok bool) {
	const (
		memHash     = `,"hash":"`
		memPrevHash = `","prev_hash":"`
		memNodeID   = `,"node_id":"`
		memSeq      = `"seq":`
	)
	n := len(line)
	tail := len(memHash) + 64 + 2
	if n < tail+len(`{"seq":1,"node_id":"a","prev_hash":"`)+64+1 || line[0] != '{' || line[n-1] != '}' || line[n-2] != '"' {
		return
	}
	canonEnd := n - tail
	if string(line[canonEnd:canonEnd+len(memHash)]) != memHash {
		return
	}
	hash = line[n-2-64 : n-2]
	p := canonEnd - 1
	if line[p] != '"' {
		return
	}
	prev = line[p-64 : p]
	p -= 64 + len(memPrevHash)
	if p < 0 || string(line[p:p+len(memPrevHash)]) != memPrevHash {
		return
	}
	q := p
	for q > 0 && nodeIDByte(line[q-1]) {
		q--
	}
	if p == q || q < len(memNodeID)+len(memSeq)+2 {
		return
	}
	node = line[q:p]
	q -= len(memNodeID)
	if string(line[q:q+len(memNodeID)]) != memNodeID {
		return
	}
	d := q
	for d > 0 && line[d-1] >= '0' && line[d-1] <= '9' {
		d--
	}
	if d == q || q-d > 20 || line[d] == '0' || d < len(memSeq)+1 || string(line[d-len(memSeq):d]) != memSeq {
		return
	}
	v, err := strconv.ParseUint(string(line[d:q]), 10, 64)
	if err != nil {
		return
	}
	return v, node, prev, hash, true
}

func nodeIDByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-'
}

func (p *Parser) slowFields(line []byte) (*Fields, Kind, error) {
	l, err := logline.Parse(line)
	if err != nil {
		return &p.f, KindOther, err
	}
	r, kind, err := fromLineKind(l)
	f := &p.f
	if err != nil || kind == KindOther {
		return f, kind, err
	}
	*f = Fields{
		Seq: r.Seq, NodeID: []byte(r.NodeID), UnixNano: r.Time.UnixNano(), HasTime: !r.Time.IsZero(),
		RequestID: []byte(r.RequestID), DisplayName: []byte(r.DisplayName), Actor: []byte(r.Actor), EntityName: []byte(r.EntityName),
		EntityID: []byte(r.EntityID), Accessor: []byte(r.Accessor),
		RemoteAddr: []byte(r.RemoteAddr), RemotePort: r.RemotePort, Operation: []byte(r.Operation), Path: []byte(r.Path),
		MountPoint: []byte(r.MountPoint), MountType: []byte(r.MountType), Error: []byte(r.Error), Status: r.Status,
		ErrorCode: []byte(r.ErrorCode), TokenType: []byte(r.TokenType), Allowed: r.Allowed, Internal: r.Internal, Incomplete: r.Incomplete,
		Granting: toBytes(r.GrantingPolicies), DenyReasons: toBytes(r.DenyReasons), Policies: toBytes(r.Policies),
		Sealed: l.Vigil().Sealed,
	}
	if !f.HasTime {
		f.UnixNano = 0
	}
	for k, v := range r.Flags {
		f.FlagNames, f.FlagValues = append(f.FlagNames, []byte(k)), append(f.FlagValues, []byte(v))
	}
	sortFlags(f.FlagNames, f.FlagValues)
	return f, kind, nil
}

func toBytes(s []string) [][]byte {
	if len(s) == 0 {
		return nil
	}
	out := make([][]byte, len(s))
	for i, x := range s {
		out[i] = []byte(x)
	}
	return out
}

func sortFlags(names, vals [][]byte) {
	for i := 1; i < len(names); i++ { // insertion sort: a handful of flags
		for j := i; j > 0 && bytes.Compare(names[j-1], names[j]) > 0; j-- {
			names[j-1], names[j] = names[j], names[j-1]
			vals[j-1], vals[j] = vals[j], vals[j-1]
		}
	}
}

func orb(a, b []byte) []byte {
	if len(a) > 0 {
		return a
	}
	return b
}

// fastTime parses the time layout the Vault formatter writes (UTC RFC 3339
// with up to nine fractional digits and "Z") without allocating. ok is
// false for anything else (the caller then takes the slow path); has is
// false for an empty time.
func fastTime(b []byte) (ns int64, has, ok bool) {
	if len(b) == 0 {
		return 0, false, true
	}
	if len(b) < 20 || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' || b[len(b)-1] != 'Z' {
		return 0, false, false
	}
	d := func(i, n int) (int, bool) {
		v := 0
		for _, c := range b[i : i+n] {
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + int(c-'0')
		}
		return v, true
	}
	year, ok1 := d(0, 4)
	mon, ok2 := d(5, 2)
	day, ok3 := d(8, 2)
	hh, ok4 := d(11, 2)
	mm, ok5 := d(14, 2)
	ss, ok6 := d(17, 2)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || mon < 1 || mon > 12 || day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 59 {
		return 0, false, false
	}
	frac := 0
	switch rest := b[19 : len(b)-1]; {
	case len(rest) == 0:
	case rest[0] == '.' && len(rest) >= 2 && len(rest) <= 10:
		f, okf := d(20, len(rest)-1)
		if !okf {
			return 0, false, false
		}
		for i := len(rest) - 1; i < 9; i++ {
			f *= 10
		}
		frac = f
	default:
		return 0, false, false
	}
	t := time.Date(year, time.Month(mon), day, hh, mm, ss, frac, time.UTC)
	if t.Day() != day { // e.g. February 30th: let time.Parse refuse it
		return 0, false, false
	}
	return t.UnixNano(), true, true
}

func fromLineKind(l *logline.Line) (Record, Kind, error) {
	r, ok := FromLine(l)
	switch {
	case !ok:
		return Record{}, KindOther, nil
	case r.Incomplete:
		return r, KindRequest, nil
	}
	return r, KindResponse, nil
}

// RequestID returns the request id and whether the entry was made while
// the server was sealed,
// scanning the raw line without decoding it fully. ok is false when the
// line has no request id member where the Vault format puts it.
func RequestID(line []byte) (id string, sealed, ok bool) {
	// "request":{"id":"..." — the formatter writes id first in request.
	i := bytes.Index(line, []byte(`"request":{"id":"`))
	if i < 0 {
		return "", false, false
	}
	rest := line[i+len(`"request":{"id":"`):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 || bytes.IndexByte(rest[:j], '\\') >= 0 {
		return "", false, false
	}
	// "vigil" is the entry's last member: nothing from request data can
	// follow it, and inside it strings cannot hold an unescaped quote.
	if k := bytes.LastIndex(line, []byte(`,"vigil":{`)); k >= 0 {
		sealed = bytes.Contains(line[k:], []byte(`"sealed":true`))
	}
	return string(rest[:j]), sealed, true
}

// normTime gives every record time the same representation (UTC, no
// monotonic reading), so records built by either path compare equal.
func normTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return time.Unix(0, t.UnixNano()).UTC()
}

// isLogin mirrors logline.Line.IsLogin.
func isLogin(p string) bool {
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

func nonEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return append([]string(nil), s...)
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Compare orders records by (time, node id, seq), the order every backend
// returns them in.
func Compare(a, b *Record) int {
	if c := a.Time.Compare(b.Time); c != 0 {
		return c
	}
	if a.NodeID != b.NodeID {
		if a.NodeID < b.NodeID {
			return -1
		}
		return 1
	}
	switch {
	case a.Seq < b.Seq:
		return -1
	case a.Seq > b.Seq:
		return 1
	}
	return 0
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// namespacePath is the path of the namespace an entry's request was made in
// ("" for the root namespace).
func namespacePath(req *vault.Request) string {
	if req == nil || req.Namespace == nil {
		return ""
	}
	return req.Namespace.Path
}
