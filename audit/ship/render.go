package ship

import (
	"github.com/vigilsec/vigil/audit/format/cef"
	"github.com/vigilsec/vigil/audit/format/logline"
	"github.com/vigilsec/vigil/audit/format/ocsf"
)

// Stream formats.
const (
	FormatVault = "vault" // the local line, byte for byte
	FormatOCSF  = "ocsf"
	FormatCEF   = "cef"
)

// Render says how a stream renders its records.
type Render struct {
	// Format is FormatVault, FormatOCSF or FormatCEF.
	Format string
	// OmitRaw leaves the original line out of OCSF and CEF events.
	OmitRaw        bool
	ProductVersion string
	// Regulated reports whether a mount point holds regulated data (its
	// denials are High severity); see Env.Regulated.
	Regulated func(mount string) bool
	// PerRequest sends one event per request: a request entry is left out
	// when its response entry (which repeats the request) is in the same
	// batch. A request entry whose response is not in the batch — still
	// in flight, in the next batch, or never written (a crash) — is sent,
	// so nothing is lost. Not for FormatVault, whose consumers re-verify
	// the chain from every line.
	PerRequest bool
}

// Rendered is one record as a stream sends it.
type Rendered struct {
	Record
	Value  []byte
	Format string
	// Err is set when the line could not be rendered: Value is then the
	// line itself (FormatVault), never dropped.
	Err error
}

// Batch renders recs in order, leaving out (with PerRequest) the request
// entries answered within recs.
func (r Render) Batch(recs []Record) []Rendered {
	out := make([]Rendered, 0, len(recs))
	if r.Format == FormatVault || r.Format == "" {
		for _, rec := range recs {
			out = append(out, Rendered{Record: rec, Value: rec.Line, Format: FormatVault})
		}
		return out
	}
	lines := make([]*logline.Line, len(recs))
	errs := make([]error, len(recs))
	answered := map[string]bool{}
	for i, rec := range recs {
		lines[i], errs[i] = logline.Parse(rec.Line)
		if errs[i] == nil && r.PerRequest && lines[i].Type == "response" {
			answered[lines[i].Request().ID] = true
		}
	}
	for i, rec := range recs {
		l := lines[i]
		if errs[i] != nil {
			out = append(out, Rendered{Record: rec, Value: rec.Line, Format: FormatVault, Err: errs[i]})
			continue
		}
		if r.PerRequest && l.Type == "request" && l.Request().ID != "" && answered[l.Request().ID] {
			continue
		}
		var v []byte
		var err error
		switch r.Format {
		case FormatOCSF:
			v, err = ocsfMarshal(ocsf.Build(l, rec.Line, ocsf.Options{ProductVersion: r.ProductVersion, OmitRaw: r.OmitRaw, Regulated: r.Regulated}))
		case FormatCEF:
			v = cef.Build(l, rec.Line, cef.Options{ProductVersion: r.ProductVersion, OmitRaw: r.OmitRaw, Regulated: r.Regulated})
		}
		if err != nil {
			out = append(out, Rendered{Record: rec, Value: rec.Line, Format: FormatVault, Err: err})
			continue
		}
		out = append(out, Rendered{Record: rec, Value: v, Format: r.Format})
	}
	return out
}

// ocsfMarshal encodes an event as ocsf.Format does.
func ocsfMarshal(ev *ocsf.Event) ([]byte, error) { return ocsf.Marshal(ev) }

// Answered marks, for one event per request, the request entries of recs
// whose response entry is also in recs (those a stream may leave out).
func Answered(recs []Record) []bool {
	type info struct {
		id   string
		resp bool
		req  bool
	}
	infos := make([]info, len(recs))
	Parallel(len(recs), func(i int) {
		l, err := logline.Parse(recs[i].Line)
		if err != nil || l.IsRecord() {
			return
		}
		infos[i] = info{id: l.Request().ID, resp: l.Type == "response", req: l.Type == "request"}
	})
	answered := map[string]bool{}
	for _, in := range infos {
		if in.resp && in.id != "" {
			answered[in.id] = true
		}
	}
	skip := make([]bool, len(recs))
	for i, in := range infos {
		skip[i] = in.req && in.id != "" && answered[in.id]
	}
	return skip
}
