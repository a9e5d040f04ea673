package query

import (
	"encoding/csv"
	"encoding/json"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vigilsec/vigil/audit/format/logline"
	"github.com/vigilsec/vigil/audit/format/ocsf"
	"github.com/vigilsec/vigil/audit/format/vault"
)

// CSVHeader is the header row of WriteCSV.
func CSVHeader() []string {
	return []string{"time", "node_id", "seq", "request_id", "display_name", "entity_id", "accessor", "remote_address", "remote_port",
		"operation", "path", "mount_point", "mount_type", "allowed", "error", "status", "error_code", "granting_policies",
		"deny_reasons", "flags", "policies", "token_type", "internal", "incomplete", "actor", "entity_name", "namespace"}
}

// CSVRow renders r in CSVHeader's column order. Lists are joined with
// ";", flags as "name=value" pairs sorted by name and joined with ";",
// times in RFC 3339 with nanoseconds (UTC), booleans as true/false.
func CSVRow(r *Record) []string {
	port := ""
	if r.RemotePort != 0 {
		port = strconv.Itoa(r.RemotePort)
	}
	status := ""
	if r.Status != 0 {
		status = strconv.Itoa(r.Status)
	}
	return []string{r.Time.UTC().Format(time.RFC3339Nano), r.NodeID, itoa(r.Seq), r.RequestID, r.DisplayName, r.EntityID, r.Accessor,
		r.RemoteAddr, port, r.Operation, r.Path, r.MountPoint, r.MountType, strconv.FormatBool(r.Allowed), r.Error, status, r.ErrorCode,
		strings.Join(r.GrantingPolicies, ";"), strings.Join(r.DenyReasons, ";"), FlagsString(r.Flags), strings.Join(r.Policies, ";"),
		r.TokenType, strconv.FormatBool(r.Internal), strconv.FormatBool(r.Incomplete), r.Actor, r.EntityName, r.Namespace}
}

// FlagsString renders flags as sorted "name=value" pairs joined by ";".
func FlagsString(flags map[string]string) string {
	if len(flags) == 0 {
		return ""
	}
	keys := make([]string, 0, len(flags))
	for k := range flags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + flags[k]
	}
	return strings.Join(parts, ";")
}

// CSVWriter writes records as RFC 4180 CSV (encoding/csv, CRLF line
// endings).
type CSVWriter struct {
	w *csv.Writer
}

// NewCSVWriter returns a writer; header writes CSVHeader first.
func NewCSVWriter(w io.Writer, header bool) (*CSVWriter, error) {
	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	if header {
		if err := cw.Write(CSVHeader()); err != nil {
			return nil, err
		}
	}
	return &CSVWriter{w: cw}, nil
}

// Write writes one record.
func (c *CSVWriter) Write(r *Record) error { return c.w.Write(CSVRow(r)) }

// Flush flushes and returns any write error.
func (c *CSVWriter) Flush() error {
	c.w.Flush()
	return c.w.Error()
}

// WriteCSV writes records with a header row.
func WriteCSV(w io.Writer, recs []Record) error {
	cw, err := NewCSVWriter(w, true)
	if err != nil {
		return err
	}
	for i := range recs {
		if err := cw.Write(&recs[i]); err != nil {
			return err
		}
	}
	return cw.Flush()
}

// OCSF renders a record as an OCSF 1.3 event with audit/format/ocsf's
// mapping (logins as Authentication, everything else as API Activity). The
// record is mapped back to the Vault entry fields it came from; what a
// record does not keep (request data, the token's HMAC, the chain hashes)
// is absent, and raw_data is omitted — export the log itself (or stream it)
// when the original lines are needed. metadata.uid is "<node_id>:<seq>"
// as in the stream.
func OCSF(r *Record, productVersion string) ([]byte, error) {
	typ := "response"
	if r.Incomplete {
		typ = "request"
	}
	auth := &vault.Auth{Accessor: r.Accessor, DisplayName: r.DisplayName, Policies: r.Policies, EntityID: r.EntityID, TokenType: r.TokenType}
	if len(r.GrantingPolicies) > 0 || !r.Allowed {
		pr := &vault.PolicyResults{Allowed: r.Allowed}
		// A record keeps the granting policies' names, not their kind
		// (ACL or Rego): only root is known to be an ACL policy; the
		// stream's OCSF, built from the log line, carries every type.
		for _, g := range r.GrantingPolicies {
			typ := ""
			if g == "root" {
				typ = "acl"
			}
			pr.GrantingPolicies = append(pr.GrantingPolicies, vault.PolicyInfo{Name: g, NamespaceID: "root", Type: typ})
		}
		auth.PolicyResults = pr
	}
	l := &logline.Line{
		Entry: vault.Entry{
			Time: r.Time.UTC().Format(time.RFC3339Nano), Type: typ, Auth: auth, Error: r.Error,
			Request: &vault.Request{ID: r.RequestID, Operation: r.Operation, MountType: r.MountType, MountPoint: r.MountPoint,
				Path: r.Path, RemoteAddr: r.RemoteAddr, RemotePort: r.RemotePort},
		},
		Seq: r.Seq, NodeID: r.NodeID, At: r.Time,
	}
	vg := &vault.Vigil{DenyReasons: r.DenyReasons, Flags: r.Flags, Status: r.Status, ErrorCode: r.ErrorCode}
	if r.Internal {
		vg.Actor = r.DisplayName
	}
	if r.Actor != "" || r.EntityName != "" {
		vg.Identity = &vault.Identity{Actor: r.Actor, EntityName: r.EntityName}
	}
	l.Entry.Vigil = vg
	if l.IsLogin() {
		l.Entry.Auth = &vault.Auth{PolicyResults: auth.PolicyResults}
		l.Entry.Response = &vault.Response{Auth: &vault.Auth{Accessor: r.Accessor, DisplayName: r.DisplayName, EntityID: r.EntityID, Policies: r.Policies}}
	}
	ev := ocsf.Build(l, nil, ocsf.Options{ProductVersion: productVersion, OmitRaw: true})
	return marshalNoHTML(ev)
}

func marshalNoHTML(v any) ([]byte, error) {
	var buf strings.Builder
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return []byte(strings.TrimSuffix(buf.String(), "\n")), nil
}
