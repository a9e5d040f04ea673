package reports

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/vigilsec/vigil/core/safetext"
)

// formatNames.
const (
	FormatJSON = "json"
	FormatCSV  = "csv"
	FormatHTML = "html"
	FormatPDF  = "pdf"
)

// formatNames lists the output formats.
var formatNames = []string{FormatPDF, FormatHTML, FormatCSV, FormatJSON}

// ContentType returns the MIME type of a format.
func ContentType(format string) string {
	switch format {
	case FormatCSV:
		return "text/csv; charset=utf-8; header=present"
	case FormatHTML:
		return "text/html; charset=utf-8"
	case FormatPDF:
		return "application/pdf"
	}
	return "application/json"
}

// Render writes r in format to w. Output is deterministic for a given
// report.
func Render(w io.Writer, r *Report, format string) error {
	switch format {
	case FormatJSON, "":
		return RenderJSON(w, r)
	case FormatCSV:
		return RenderCSV(w, forDisplay(r))
	case FormatHTML:
		return RenderHTML(w, forDisplay(r))
	case FormatPDF:
		return RenderPDF(w, forDisplay(r))
	}
	return fmt.Errorf("%w: unknown format %q (want %s)", ErrInvalid, format, strings.Join(formatNames, ", "))
}

// RenderJSON writes the report as indented JSON; bidirectional controls
// and other invisible characters in strings are written as \u escapes
// (the same values, displayed as they are).
func RenderJSON(w io.Writer, r *Report) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return err
	}
	_, err := w.Write(safetext.EscapeJSON(b.Bytes()))
	return err
}

// csvHeader is the CSV report's header row.
var csvHeader = []string{"section", "controls", "kind", "name", "key", "value", "reproduce"}

// CSVHeader returns the list above (a copy: callers may change it).
func CSVHeader() []string { return slices.Clone(csvHeader) }

// RenderCSV writes the report as RFC 4180 CSV (CRLF line ends, quoted
// fields where needed) in long form: one row per fact, so every row has
// the same columns. kind is meta, caveat, scope, control, result, figure,
// note or table:<id> (one row per table cell: name = the row's first
// cell, key = the column). reproduce is the query API call(s) and
// predicate that recompute a figure.
func RenderCSV(w io.Writer, r *Report) error {
	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	rows := [][]string{csvHeader,
		{"report", "", "meta", "title", "title", r.Title, ""},
		{"report", "", "meta", "regulation", "regulation", r.Regulation, ""},
		{"report", "", "meta", "period", "from", r.From.Format("2006-01-02T15:04:05Z07:00"), ""},
		{"report", "", "meta", "period", "to", r.To.Format("2006-01-02T15:04:05Z07:00"), ""},
		{"report", "", "meta", "generated", "generated_at", r.GeneratedAt.Format("2006-01-02T15:04:05Z07:00"), ""},
		{"report", "", "meta", "backend", "backend", r.Backend, ""},
	}
	if cp := r.Checkpoint; cp != nil {
		rows = append(rows, []string{"report", "", "meta", "checkpoint", "node_seq", fmt.Sprintf("%s:%d", cp.NodeID, cp.Seq), ""},
			[]string{"report", "", "meta", "checkpoint", "hash", cp.Hash, ""}, []string{"report", "", "meta", "checkpoint", "key_id", cp.KeyID, ""})
	}
	for _, m := range r.Scope.Mounts {
		rows = append(rows, []string{"report", "", "scope", "mount", "mount", m, ""})
	}
	for _, m := range r.Scope.Secrets {
		rows = append(rows, []string{"report", "", "scope", "secret", "secret", m, ""})
	}
	for _, c := range r.Caveats {
		rows = append(rows, []string{"report", "", "caveat", "caveat", "", c, ""})
	}
	for _, f := range r.Summary {
		rows = append(rows, figureRow("summary", "", f))
	}
	for _, s := range r.Sections {
		ctl := controlList(s.Controls)
		rows = append(rows, []string{s.ID, ctl, "result", s.Title, s.Result, s.ResultText, ""})
		for _, f := range s.Figures {
			rows = append(rows, figureRow(s.ID, ctl, f))
		}
		for _, t := range s.Tables {
			for _, row := range t.Rows {
				for i, cell := range row {
					if i == 0 {
						continue
					}
					rows = append(rows, []string{s.ID, ctl, "table:" + t.ID, row[0], t.Columns[i], cell, ""})
				}
			}
		}
		for _, n := range s.Notes {
			rows = append(rows, []string{s.ID, ctl, "note", "", "", n, ""})
		}
	}
	for _, c := range r.Controls {
		rows = append(rows, []string{"controls", c.ID, "control", c.Citation + " " + c.Title, c.Confidence, c.Text, c.Source})
	}
	if err := cw.WriteAll(rows); err != nil {
		return err
	}
	return cw.Error()
}

func controlList(cs []ControlRef) string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Citation + " [" + c.Confidence + "]"
	}
	return strings.Join(out, "; ")
}

func figureRow(section, ctl string, f Figure) []string {
	return []string{section, ctl, "figure", f.Label, f.Key, f.Display(), f.Check.String()}
}

// String renders a check as "GET /v1/sys/audit/query?... [+ ...] | match".
func (c *Check) String() string {
	if c == nil {
		return ""
	}
	parts := make([]string, len(c.Queries))
	for i, q := range c.Queries {
		parts[i] = "GET /v1/sys/audit/query?" + q
	}
	s := strings.Join(parts, " + ")
	if len(c.Queries) == 0 {
		s = "(no in-scope mount)"
	}
	if c.Match != "" {
		s += " | match " + c.Match
	}
	return s
}
