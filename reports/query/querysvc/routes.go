package querysvc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/reports/query"
)

const routePattern = `audit/query/?`

// Response headers of the csv and ocsf formats (the json format carries
// the same facts in its body).
const (
	HeaderNext       = "X-Vigil-Query-Next"
	HeaderBackend    = "X-Vigil-Query-Backend"
	HeaderCheckpoint = "X-Vigil-Query-Checkpoint" // the checkpoint, as JSON
)

// queryCatchUpWait bounds how long a query waits for the index to reach
// a fresh checkpoint.
const queryCatchUpWait = 5 * time.Second

type routes struct{ s *Subsystem }

func (r routes) Routes() []framework.Route {
	str := func() *framework.FieldSchema { return &framework.FieldSchema{Type: framework.TypeString} }
	fields := map[string]*framework.FieldSchema{"limit": {Type: framework.TypeInt}, "proofs": {Type: framework.TypeBool}}
	for _, name := range query.ParamNames() {
		if fields[name] == nil {
			fields[name] = str()
		}
	}
	return []framework.Route{{
		Pattern:    routePattern,
		Fields:     fields,
		Operations: map[core.Operation]framework.HandlerFunc{core.OpRead: r.query},
		Help:       "Who accessed which secret, when, with what operation, and was it allowed: audited requests matching a filter, with the checkpoint they were verified against.",
	}}
}

func (r routes) query(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	s := r.s
	format := strings.ToLower(d.String("format"))
	switch format {
	case "", "json", "csv", "ocsf":
	default:
		return nil, core.Invalid("audit query: format must be json, csv or ocsf, got %q", format)
	}
	if unknown := d.Unknown(); len(unknown) > 0 {
		return nil, core.Invalid("audit query: unknown parameter(s) %s (known: %s)", strings.Join(unknown, ", "), strings.Join(query.ParamNames(), ", "))
	}
	if !validNode(d.String("node_id")) {
		return nil, core.Invalid("audit query: %q is not a node id", d.String("node_id"))
	}
	f, err := query.FilterFromParams(d.String, d.Int("limit"), s.now())
	if err != nil {
		return nil, err
	}
	// In a namespace, namespace= is relative to it and the answer never
	// leaves it: a namespace's auditor sees that namespace alone.
	f.Namespace = query.ScopeNamespace(req.NS(), d.String("namespace"))
	mapped := s.kvLogicalPath(&f)
	facts := map[string]string{}
	for _, kv := range f.Params() {
		facts["filter."+kv[0]] = kv[1]
	}
	if f.After != "" {
		facts["page"] = "next"
	}
	b, err := s.Backend()
	if err != nil {
		return nil, err
	}
	// A first page covers everything audited up to this request: the
	// index catches up to a fresh checkpoint (bounded; on timeout the
	// answer stands at the last checkpoint indexed, with a warning).
	var warn string
	if f.After == "" {
		cctx, cancel := context.WithTimeout(ctx, queryCatchUpWait)
		if err := s.CatchUp(cctx, req.ID); err != nil {
			warn = "the answer may miss the latest requests: " + err.Error()
		}
		cancel()
	}
	res, err := b.Query(ctx, f)
	if err != nil {
		return nil, err
	}
	if warn != "" {
		res.Warnings = append(res.Warnings, warn)
	}
	if mapped != "" {
		res.Warnings = append(res.Warnings, mapped)
	}
	for i := range res.Records {
		res.Records[i].Preflight = query.IsPreflight(res.Records[i].Path)
	}
	// This query's own request entry is in the log, without its response
	// yet: leave it out rather than list it as Incomplete.
	if f.After == "" {
		kept := res.Records[:0]
		for _, rec := range res.Records {
			if rec.RequestID != req.ID || !rec.Incomplete {
				kept = append(kept, rec)
			}
		}
		res.Records = kept
	}
	if d.Bool("proofs") {
		if format != "" && format != "json" {
			return nil, core.Invalid("audit query: proofs=true needs format=json")
		}
		if err := s.attachProofs(res); err != nil {
			res.Warnings = append(res.Warnings, "no inclusion proofs: "+err.Error())
		}
		facts["proofs"] = "true"
	}
	facts["records"] = fmt.Sprint(len(res.Records))
	if res.Checkpoint != nil {
		facts["checkpoint"] = fmt.Sprintf("%s:%d", res.Checkpoint.NodeID, res.Checkpoint.Seq)
	}
	resp := &core.Response{Headers: map[string][]string{HeaderBackend: {res.Backend}}, AuditFacts: facts}
	if res.Next != "" {
		resp.Headers[HeaderNext] = []string{res.Next}
	}
	if res.Checkpoint != nil {
		cj, _ := json.Marshal(res.Checkpoint)
		resp.Headers[HeaderCheckpoint] = []string{string(cj)}
	}
	var body bytes.Buffer
	switch format {
	case "csv":
		if err := query.WriteCSV(&body, res.Records); err != nil {
			return nil, err
		}
		resp.Raw = &core.RawBody{ContentType: "text/csv; charset=utf-8", Body: body.Bytes()}
	case "ocsf":
		for i := range res.Records {
			ev, err := query.OCSF(&res.Records[i], s.version)
			if err != nil {
				return nil, err
			}
			body.Write(ev)
			body.WriteByte('\n')
		}
		resp.Raw = &core.RawBody{ContentType: "application/x-ndjson", Body: body.Bytes()}
	default:
		env := envelope{RequestID: req.ID, Data: res}
		if err := json.NewEncoder(&body).Encode(env); err != nil {
			return nil, err
		}
		resp.Raw = &core.RawBody{ContentType: "application/json", Body: body.Bytes()}
	}
	return resp, nil
}

// envelope is Vault's response envelope, so vault/api clients read the
// body as a *Secret whose Data is the Result.
type envelope struct {
	RequestID     string        `json:"request_id"`
	LeaseID       string        `json:"lease_id"`
	Renewable     bool          `json:"renewable"`
	LeaseDuration int           `json:"lease_duration"`
	Data          *query.Result `json:"data"`
	WrapInfo      any           `json:"wrap_info"`
	Warnings      []string      `json:"warnings"`
	Auth          any           `json:"auth"`
}

// kvLogicalPath maps a KV version 2 logical path (secret/ward/7, as the
// `kv` commands name it) to the API path its reads are audited under
// (secret/data/ward/7), so the filter does not silently match nothing.
// It returns the sentence stating the mapping ("" when none was made).
func (s *Subsystem) kvLogicalPath(f *query.Filter) string {
	if f.Path == "" || s.mounts == nil {
		return ""
	}
	for _, m := range s.mounts() {
		if m.Type != "kv" || m.Options["version"] != "2" || !strings.HasPrefix(f.Path, m.Path) {
			continue
		}
		rest := strings.TrimPrefix(f.Path, m.Path)
		first, _, _ := strings.Cut(rest, "/")
		switch first {
		case "", "data", "metadata", "delete", "undelete", "destroy", "config", "subkeys":
			return ""
		}
		if query.IsGlob(first) {
			return "" // a glob over the API paths (secret/*/ward/7)
		}
		was := f.Path
		f.Path = m.Path + "data/" + rest
		return fmt.Sprintf("%s is a KV version 2 mount: the path %s was read as %s, where reads and writes of the secret are audited "+
			"(use %s*/%s for its metadata, delete and destroy requests too)", m.Path, was, f.Path, m.Path, rest)
	}
	return ""
}
