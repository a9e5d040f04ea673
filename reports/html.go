package reports

import (
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"

	"github.com/vigilsec/vigil/compliance"
)

var htmlFuncs = template.FuncMap{
	"svg":   func(c Chart) template.HTML { return template.HTML(ChartSVG(c)) }, //nolint:gosec // built from escaped parts
	"ts":    func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
	"conf":  compliance.ConfidenceText,
	"check": func(c *Check) string { return c.String() },
	"chart": func(r *Report, id string) *Chart {
		for i := range r.Charts {
			if r.Charts[i].ID == id {
				return &r.Charts[i]
			}
		}
		return nil
	},
	"heat":     heatHTML,
	"upper":    strings.ToUpper,
	"result":   ResultLabel,
	"wrap":     wrapHTML,
	"commands": func(c *Check) []string { return c.Commands() },
	"tz": func(r *Report, t time.Time) string {
		loc, err := time.LoadLocation(r.TimeZone)
		if err != nil || r.TimeZone == "" {
			loc = time.UTC
		}
		return t.In(loc).Format("2006-01-02 15:04 MST")
	},
	"rest": func(t Table) string {
		if t.Rest == nil {
			return ""
		}
		col := ""
		if t.CountCol > 0 && t.CountCol < len(t.Columns) {
			col = t.Columns[t.CountCol]
		}
		return t.Rest.RestText(col)
	},
}

// heatHTML draws a heat chart as a table with shaded cells.
func heatHTML(c Chart) template.HTML {
	var b strings.Builder
	if len(c.Series) == 0 {
		return template.HTML(`<p class="empty">No in-scope path was accessed in the period.</p>`)
	}
	m := maxOf(c.Series, false)
	b.WriteString(`<table class="heat"><thead><tr><th>Path</th>`)
	for _, l := range c.Labels {
		fmt.Fprintf(&b, `<th>%s</th>`, esc(l))
	}
	b.WriteString(`<th>Total</th></tr></thead><tbody>`)
	for _, s := range c.Series {
		fmt.Fprintf(&b, `<tr><td class="p">%s</td>`, esc(s.Name))
		var tot int64
		for _, v := range s.Values {
			tot += v
			r, g, bl := heatColor(v, m)
			fg := "#1a202c"
			if r < 140 {
				fg = "#fff"
			}
			txt := ""
			if v > 0 {
				txt = itoa(v)
			}
			fmt.Fprintf(&b, `<td style="background:#%02x%02x%02x;color:%s">%s</td>`, r, g, bl, fg, txt)
		}
		fmt.Fprintf(&b, `<td><b>%d</b></td></tr>`, tot)
	}
	b.WriteString(`</tbody></table>`)
	return template.HTML(b.String()) //nolint:gosec // escaped above
}

var htmlTmpl = template.Must(template.New("report").Funcs(htmlFuncs).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}} {{ts .From}} to {{ts .To}}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1a202c;max-width:1000px;margin:24px auto;padding:0 16px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:32px 0 6px;border-bottom:2px solid #2b6cb0;padding-bottom:4px}
h3{font-size:14px;margin:16px 0 6px}table{border-collapse:collapse;width:100%;margin:6px 0 12px;font-size:13px}
th,td{border:1px solid #e2e8f0;padding:3px 6px;text-align:left;vertical-align:top}th{background:#f7fafc}
td.n{text-align:right;font-variant-numeric:tabular-nums}.meta td:first-child{width:30%;color:#4a5568}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-weight:600;font-size:12px;color:#fff}
.pass{background:#38a169}.fail{background:#c53030}.attention{background:#d69e2e}.manual{background:#805ad5}.info{background:#4a5568}.partial{background:#c05621}.no_data{background:#718096}
.ctl{font-size:12px;color:#4a5568}.caveat{background:#fffaf0;border-left:4px solid #d69e2e;padding:6px 10px;font-size:13px}
.q{font:11px ui-monospace,monospace;color:#718096;overflow-wrap:normal}td{overflow-wrap:normal;word-break:normal}tr.rest td{font-style:italic;background:#f7fafc}.empty{color:#718096;font-style:italic}
table.heat td{text-align:center;min-width:22px;font-size:11px}table.heat td.p{text-align:left;font:11px ui-monospace,monospace}
svg{max-width:100%;height:auto;margin:6px 0}.note{font-size:12px;color:#4a5568}
@media print{h2,h3{break-after:avoid}tr,svg{break-inside:avoid}}
</style></head><body>
<h1>{{.Title}}</h1>
<div class="ctl">{{.Regulation}}</div>
<table class="meta">
<tr><td>Period</td><td>{{if .Period}}{{.Period}}: {{end}}{{tz . .From}} to {{tz . .To}} (end exclusive; times in {{.TimeZone}})</td></tr>
<tr><td>Generated</td><td>{{tz . .GeneratedAt}}{{if .NodeID}} on node {{.NodeID}}{{end}}</td></tr>
<tr><td>Query backend</td><td>{{.Backend}}</td></tr>
{{with .Checkpoint}}<tr><td>Signed checkpoint</td><td>node {{.NodeID}} seq {{.Seq}}, hash <code>{{wrap .Hash}}</code>, key {{.KeyID}}, {{ts .Time}}</td></tr>{{end}}
{{with .Coverage}}<tr><td>Coverage</td><td><span class="badge {{if eq .Status "full"}}pass{{else if eq .Status "none"}}no_data{{else}}partial{{end}}">{{upper .Status}}</span> {{.Text}}{{if .Nodes}}<table><tr><th>Node</th><th>First record held</th><th>Verified up to</th><th>Records</th><th>Missing</th></tr>{{range .Nodes}}<tr><td>{{.NodeID}}</td><td>seq {{.FirstSeq}}, {{ts .First}}{{if .DroppedBefore}} (earlier entries rotated away){{end}}</td><td>seq {{.LastSeq}}, {{ts .Last}}</td><td class="n">{{.Records}}</td><td>{{range .Gaps}}{{.From}}-{{.To}} {{end}}</td></tr>{{end}}</table>{{end}}</td></tr>{{end}}
<tr><td>Scope</td><td>{{if or .Scope.Mounts .Scope.Secrets}}{{range $i, $m := .Scope.Mounts}}{{if $i}}, {{end}}<code>{{$m}}</code>{{end}}{{if .Scope.Secrets}}{{if .Scope.Mounts}}; {{end}}secrets {{range $i, $m := .Scope.Secrets}}{{if $i}}, {{end}}<code>{{$m}}</code>{{end}}{{end}}{{else}}<b>none</b>{{end}}<div class="note">{{.Scope.Note}}</div></td></tr>
</table>
{{range .Caveats}}<p class="caveat">{{.}}</p>{{end}}
<h2>Summary</h2>
<table><tr><th>Figure</th><th>Value</th></tr>
{{range .Summary}}<tr><td>{{.Label}}</td><td class="n">{{.Display}}</td></tr>{{end}}
</table>
<table><tr><th>Section</th><th>Controls</th><th>Result</th></tr>
{{range .Sections}}<tr><td><a href="#{{.ID}}">{{.Title}}</a></td><td class="ctl">{{range $i, $c := .Controls}}{{if $i}}; {{end}}{{$c.Citation}} [{{$c.Confidence}}]{{end}}</td><td><span class="badge {{.Result}}">{{result .Result}}</span></td></tr>{{end}}
</table>
{{$r := .}}
{{range .Sections}}
<h2 id="{{.ID}}">{{.Title}}</h2>
{{range .Controls}}<div class="ctl"><b>{{.Citation}}</b> — {{.Title}} [{{.Confidence}}]</div>{{end}}
<p><span class="badge {{.Result}}">{{result .Result}}</span> {{.ResultText}}</p>
<table><tr><th>Evidence</th><th>Value</th></tr>
{{range .Figures}}<tr><td>{{.Label}}{{with .Check}}{{range commands .}}<div class="q">$ {{wrap .}}</div>{{end}}<div class="q">{{wrap (check .)}}</div>{{end}}</td><td class="n">{{.Display}}</td></tr>{{end}}
</table>
{{range .Charts}}{{with chart $r .}}<h3>{{.Title}}</h3>{{if eq .Kind "heat"}}{{heat .}}{{else}}{{svg .}}{{end}}{{end}}{{end}}
{{range .Tables}}{{$t := .}}<h3>{{.Title}}</h3>{{if .Rows}}<table><tr>{{range .Columns}}<th>{{.}}</th>{{end}}</tr>
{{range .Visible}}<tr>{{range .}}<td>{{wrap .}}</td>{{end}}</tr>{{end}}{{with rest .}}<tr class="rest"><td colspan="{{len $t.Columns}}">{{.}}</td></tr>{{end}}</table>{{else}}<p class="empty">{{.Empty}}</p>{{end}}{{end}}
{{range .Notes}}<p class="note">{{.}}</p>{{end}}
{{end}}
<h2>Controls cited</h2>
<table><tr><th>Citation</th><th>Text</th><th>Confidence</th></tr>
{{range .Controls}}<tr><td><b>{{.Citation}}</b><br>{{.Title}}{{if .Kind}} ({{.Kind}}){{end}}</td><td>{{if .Text}}“{{.Text}}”{{else}}<i>No verified wording.</i>{{end}}{{if .Note}}<div class="note">{{.Note}}</div>{{end}}{{if .Source}}<div class="q">{{.Source}}</div>{{end}}</td><td>[{{.Confidence}}] {{conf .Confidence}}</td></tr>{{end}}
</table>
<p class="note">Every figure with a command can be recomputed: run the <code>vigil audit query --count</code> line(s) shown (the figure is their sum), or call GET /v1/sys/audit/query with the same parameters and count every page; where a predicate follows "| match", keep only the records it names. Generated by Vigil.</p>
</body></html>
`))

// RenderHTML writes the report as a self-contained HTML page (inline CSS
// and SVG charts; no external resources).
func RenderHTML(w io.Writer, r *Report) error { return htmlTmpl.Execute(w, r) }
