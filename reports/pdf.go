package reports

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"html"
	"io"
	"strings"
	"time"

	"codeberg.org/go-pdf/fpdf"

	"github.com/vigilsec/vigil/compliance"
)

// PDF rendering uses codeberg.org/go-pdf/fpdf, the maintained
// continuation of go-pdf/fpdf (the earlier GitHub name is archived; the
// decision is in docs/design.md): pure Go (no cgo, no external binary, no
// browser), vector primitives for the charts, embedded TrueType subsets,
// XMP metadata and ICC output intents, so each report is a self-contained
// PDF/A-2b file, deterministic for a given report.

//go:embed pdfassets/DejaVuSansCondensed.ttf
var fontRegular []byte

//go:embed pdfassets/DejaVuSansCondensed-Bold.ttf
var fontBold []byte

//go:embed pdfassets/DejaVuSansCondensed-Oblique.ttf
var fontItalic []byte

//go:embed pdfassets/sRGB2014.icc
var iccSRGB []byte

const pdfFont = "DejaVu"

type pdfDoc struct {
	f      *fpdf.Fpdf
	w, h   float64
	left   float64
	right  float64
	bottom float64
	// compress is false in tests that read the drawing operators back.
	compress bool
}

func (d *pdfDoc) contentW() float64 { return d.w - d.left - d.right }

// fits reports whether h mm fit above the bottom margin.
func (d *pdfDoc) fits(h float64) bool { return d.f.GetY()+h <= d.h-d.bottom }

// need starts a new page unless h mm fit.
func (d *pdfDoc) need(h float64) {
	if !d.fits(h) {
		d.f.AddPage()
	}
}

func (d *pdfDoc) font(style string, size float64) { d.f.SetFont(pdfFont, style, size) }

func (d *pdfDoc) color(c [3]int) { d.f.SetFillColor(c[0], c[1], c[2]) }

var resultColors = map[string][3]int{ResultPass: {56, 161, 105}, ResultFail: {197, 48, 48}, ResultAttention: {214, 158, 46},
	ResultManual: {128, 90, 213}, ResultInfo: {74, 85, 104}, ResultPartial: {192, 86, 33}, ResultNoData: {113, 128, 150}}

// RenderPDF writes the report as a PDF/A-2b document (A4) with the same
// content as the HTML: the cover (period, checkpoint, coverage, the
// evidence manifest hash when the report is part of a bundle), sections,
// figures with the command reproducing each, bounded tables, charts and
// the cited controls.
func RenderPDF(w io.Writer, r *Report) error { return renderPDF(w, r, true) }

func renderPDF(w io.Writer, r *Report, compress bool) error {
	f := fpdf.New("P", "mm", "A4", "")
	f.AddUTF8FontFromBytes(pdfFont, "", fontRegular)
	f.AddUTF8FontFromBytes(pdfFont, "B", fontBold)
	f.AddUTF8FontFromBytes(pdfFont, "I", fontItalic)
	f.SetCreationDate(r.GeneratedAt)
	f.SetModificationDate(r.GeneratedAt)
	f.SetCatalogSort(true)
	f.SetCompression(compress)
	title := r.Title + ", " + r.From.Format("2006-01-02") + " to " + r.To.Format("2006-01-02")
	f.SetTitle(title, true)
	f.SetAuthor("Vigil", true)
	f.SetSubject(r.Regulation, true)
	keywords := "audit report"
	if r.ManifestSHA256 != "" {
		keywords = "evidence manifest sha256:" + r.ManifestSHA256
	}
	f.SetKeywords(keywords, false)
	f.SetCreator("Vigil", true)
	f.SetProducer("Vigil reports (codeberg.org/go-pdf/fpdf)", true)
	f.AddOutputIntent(fpdf.OutputIntentType{SubtypeIdent: fpdf.OutputIntent_GTS_PDFA1, OutputConditionIdentifier: "sRGB IEC61966-2.1",
		Info: "sRGB IEC61966-2.1", ICCProfile: iccSRGB})
	f.SetXmpMetadata(xmp(title, r.Regulation, keywords, r.GeneratedAt))
	f.SetMargins(15, 15, 15)
	f.SetAutoPageBreak(true, 15)
	f.AliasNbPages("{nb}")
	pw, ph := f.GetPageSize()
	d := &pdfDoc{f: f, w: pw, h: ph, left: 15, right: 15, bottom: 18, compress: compress}
	f.SetFooterFunc(func() {
		f.SetY(-12)
		d.font("", 7)
		f.SetTextColor(113, 128, 150)
		foot := fmt.Sprintf("%s - page %d of {nb}", title, f.PageNo())
		if r.ManifestSHA256 != "" {
			foot = fmt.Sprintf("%s - manifest %s - page %d of {nb}", r.Title, r.ManifestSHA256[:16], f.PageNo())
		}
		f.CellFormat(0, 5, foot, "", 0, "C", false, 0, "")
		f.SetTextColor(26, 32, 44)
	})
	f.AddPage()
	d.header(r)
	for _, s := range r.Sections {
		d.section(r, s)
	}
	d.controls(r)
	if err := f.Error(); err != nil {
		return fmt.Errorf("reports: pdf: %w", err)
	}
	var buf bytes.Buffer
	if err := f.Output(&buf); err != nil {
		return fmt.Errorf("reports: pdf: %w", err)
	}
	_, err := w.Write(withFileID(buf.Bytes()))
	return err
}

// withFileID adds the file identifier PDF/A requires to the trailer
// (fpdf writes one only for encrypted files): two copies of the SHA-256
// of the document's bytes, truncated to 16 bytes. The trailer follows the
// cross-reference table, so no object offset moves.
func withFileID(pdf []byte) []byte {
	i := bytes.LastIndex(pdf, []byte("trailer\n<<"))
	if i < 0 || bytes.Contains(pdf[i:], []byte("/ID")) {
		return pdf
	}
	sum := sha256.Sum256(pdf)
	id := hex.EncodeToString(sum[:16])
	at := i + len("trailer\n<<")
	out := make([]byte, 0, len(pdf)+80)
	out = append(out, pdf[:at]...)
	out = append(out, fmt.Sprintf("\n/ID [<%s><%s>]", id, id)...)
	return append(out, pdf[at:]...)
}

// xmp is the XMP metadata packet: the Info dictionary's values and the
// PDF/A-2b identification.
func xmp(title, subject, keywords string, at time.Time) []byte {
	e := html.EscapeString
	ts := at.UTC().Format("2006-01-02T15:04:05Z")
	return []byte(`<?xpacket begin="` + "\ufeff" + `" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/"><pdfaid:part>2</pdfaid:part><pdfaid:conformance>B</pdfaid:conformance></rdf:Description>
<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:format>application/pdf</dc:format>` +
		`<dc:title><rdf:Alt><rdf:li xml:lang="x-default">` + e(title) + `</rdf:li></rdf:Alt></dc:title>` +
		`<dc:creator><rdf:Seq><rdf:li>Vigil</rdf:li></rdf:Seq></dc:creator>` +
		`<dc:description><rdf:Alt><rdf:li xml:lang="x-default">` + e(subject) + `</rdf:li></rdf:Alt></dc:description></rdf:Description>
<rdf:Description rdf:about="" xmlns:pdf="http://ns.adobe.com/pdf/1.3/"><pdf:Producer>Vigil reports (codeberg.org/go-pdf/fpdf)</pdf:Producer><pdf:Keywords>` + e(keywords) + `</pdf:Keywords></rdf:Description>
<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/"><xmp:CreatorTool>Vigil</xmp:CreatorTool><xmp:CreateDate>` + ts + `</xmp:CreateDate><xmp:ModifyDate>` + ts + `</xmp:ModifyDate></rdf:Description>
</rdf:RDF>
</x:xmpmeta>
<?xpacket end="r"?>`)
}

// lines wraps s to width w (mm) at the current font: at spaces, then after
// path separators, never inside a word when a separator allows it.
func (d *pdfDoc) lines(s string, w float64) []string {
	return wrapLines(s, w, d.f.GetStringWidth)
}

// para writes a wrapped paragraph.
func (d *pdfDoc) para(s string, size float64, style string) {
	d.font(style, size)
	lh := size * 0.45
	for _, l := range d.lines(s, d.contentW()) {
		d.need(lh)
		d.f.CellFormat(0, lh, l, "", 1, "L", false, 0, "")
	}
}

func (d *pdfDoc) header(r *Report) {
	f := d.f
	d.font("B", 18)
	for _, l := range d.lines(r.Title, d.contentW()) {
		f.CellFormat(0, 8, l, "", 1, "L", false, 0, "")
	}
	d.para(r.Regulation, 9, "")
	f.Ln(2)
	tz := r.TimeZone
	if tz == "" {
		tz = "UTC"
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		loc = time.UTC
	}
	at := func(t time.Time) string { return t.In(loc).Format("2006-01-02 15:04 MST") }
	period := fmt.Sprintf("%s to %s (end exclusive; times in %s)", at(r.From), at(r.To), tz)
	if r.Period != "" {
		period = r.Period + ": " + period
	}
	meta := [][2]string{
		{"Period", period},
		{"Generated", at(r.GeneratedAt) + nodeSuffix(r.NodeID)},
		{"Query backend", r.Backend},
	}
	if r.ManifestSHA256 != "" {
		meta = append([][2]string{{"Evidence manifest (SHA-256 of manifest.json)", r.ManifestSHA256}}, meta...)
	}
	if cp := r.Checkpoint; cp != nil {
		meta = append(meta, [2]string{"Signed checkpoint", fmt.Sprintf("node %s seq %d, key %s, %s", cp.NodeID, cp.Seq, cp.KeyID, at(cp.Time))},
			[2]string{"Checkpoint hash", cp.Hash})
	}
	if c := r.Coverage; c != nil {
		meta = append(meta, [2]string{"Coverage", strings.ToUpper(c.Status) + ": " + c.Text})
	}
	scope := strings.Join(r.Scope.Mounts, ", ")
	if len(r.Scope.Secrets) > 0 {
		if scope != "" {
			scope += "; "
		}
		scope += "secrets " + strings.Join(r.Scope.Secrets, ", ")
	}
	if scope == "" {
		scope = "none"
	}
	meta = append(meta, [2]string{"Scope", scope})
	d.tableOpts(Table{Columns: []string{"", ""}, Rows: kvRows(meta)}, []float64{0.3, 0.7}, false)
	d.para(r.Scope.Note, 8, "I")
	f.Ln(2)
	for _, c := range r.Caveats {
		f.SetFillColor(255, 250, 240)
		d.font("", 8)
		f.MultiCell(0, 3.8, strings.Join(d.lines(c, d.contentW()-2), "\n"), "L", "L", true)
		f.Ln(2)
	}
	d.h2("Summary", 20)
	var rows [][2]string
	for _, fg := range r.Summary {
		rows = append(rows, [2]string{fg.Label, fg.Display()})
	}
	d.kvTable(rows)
	f.Ln(2)
	d.table(Table{Columns: []string{"Section", "Controls", "Result"}, Rows: func() [][]string {
		var out [][]string
		for _, s := range r.Sections {
			out = append(out, []string{s.Title, controlList(s.Controls), ResultLabel(s.Result)})
		}
		return out
	}()}, []float64{0.35, 0.5, 0.15})
}

func kvRows(kv [][2]string) [][]string {
	out := make([][]string, len(kv))
	for i, r := range kv {
		out[i] = []string{r[0], r[1]}
	}
	return out
}

func nodeSuffix(n string) string {
	if n == "" {
		return ""
	}
	return " on node " + n
}

// h2 writes a section heading, keeping next mm of what follows on the
// same page (no heading alone at a page bottom).
func (d *pdfDoc) h2(s string, next float64) {
	d.need(12 + next)
	d.f.Ln(3)
	d.font("B", 13)
	d.f.SetTextColor(43, 108, 176)
	d.f.MultiCell(0, 6, s, "B", "L", false)
	d.f.SetTextColor(26, 32, 44)
	d.f.Ln(1)
}

// h3 writes a sub-heading, keeping next mm of what follows on the same
// page.
func (d *pdfDoc) h3(s string, next float64) {
	d.font("B", 10)
	ls := d.lines(s, d.contentW())
	d.need(1 + 5*float64(len(ls)) + next)
	d.f.Ln(1)
	for _, l := range ls {
		d.f.CellFormat(0, 5, l, "", 1, "L", false, 0, "")
	}
}

func (d *pdfDoc) kvTable(rows [][2]string) {
	d.tableOpts(Table{Columns: []string{"", ""}, Rows: kvRows(rows)}, []float64{0.62, 0.38}, false)
}

func (d *pdfDoc) section(r *Report, s Section) {
	f := d.f
	f.AddPage()
	d.h2(s.Title, 20)
	for _, c := range s.Controls {
		d.para(fmt.Sprintf("%s - %s [%s]", c.Citation, c.Title, c.Confidence), 8, "")
	}
	f.Ln(1)
	d.need(10)
	col := resultColors[s.Result]
	d.color(col)
	f.SetTextColor(255, 255, 255)
	d.font("B", 9)
	label := ResultLabel(s.Result)
	bw := f.GetStringWidth(label) + 6
	f.CellFormat(bw, 6, label, "", 0, "C", true, 0, "")
	f.SetTextColor(26, 32, 44)
	f.SetX(d.left + bw + 2)
	d.font("", 9)
	f.MultiCell(d.contentW()-bw-2, 6, strings.Join(d.lines(s.ResultText, d.contentW()-bw-4), "\n"), "", "L", false)
	f.Ln(1)
	t := Table{Columns: []string{"Evidence", "Value"}}
	for _, fg := range s.Figures {
		label := fg.Label
		for _, c := range fg.Check.Commands() {
			label += "\n$ " + c
		}
		t.Rows = append(t.Rows, []string{label, fg.Display()})
	}
	d.tableOpts(t, []float64{0.78, 0.22}, false)
	for _, id := range s.Charts {
		for _, c := range r.Charts {
			if c.ID == id {
				d.chart(c)
			}
		}
	}
	for _, t := range s.Tables {
		if len(t.Rows) == 0 {
			d.h3(t.Title, 5)
			d.para(t.Empty, 8, "I")
			continue
		}
		d.h3(t.Title, 12) // the header and the first row stay with the title
		d.table(t, nil)
	}
	for _, n := range s.Notes {
		f.Ln(1)
		d.para(n, 8, "I")
	}
}

// table draws a table with wrapped cells; widths are fractions of the
// content width (nil: equal, the first column wider).
func (d *pdfDoc) table(t Table, widths []float64) { d.tableOpts(t, widths, true) }

func (d *pdfDoc) tableOpts(t Table, widths []float64, header bool) {
	f := d.f
	n := len(t.Columns)
	if widths == nil {
		widths = make([]float64, n)
		for i := range widths {
			widths[i] = 1 / float64(n)
		}
		if n > 2 {
			widths[0] = 1.6 / float64(n+1)
			for i := 1; i < n; i++ {
				widths[i] = (1 - widths[0]) / float64(n-1)
			}
		}
	}
	cw := d.contentW()
	const lh = 3.6
	drawRow := func(cells []string, bold, span bool) {
		style := ""
		if bold {
			style = "B"
			f.SetFillColor(247, 250, 252)
		}
		d.font(style, 7.5)
		ws := widths
		if span {
			ws = []float64{1}
		}
		wrapped := make([][]string, len(cells))
		lines := 1
		for i, c := range cells {
			wrapped[i] = d.lines(c, ws[i]*cw-2)
			lines = max(lines, len(wrapped[i]))
		}
		rh := float64(lines)*lh + 1
		if !d.fits(rh) {
			f.AddPage()
		}
		x, y := d.left, f.GetY()
		for i := range cells {
			wd := ws[i] * cw
			if bold {
				f.Rect(x, y, wd, rh, "F")
			}
			f.Rect(x, y, wd, rh, "D")
			for j, l := range wrapped[i] {
				f.SetXY(x+1, y+0.5+float64(j)*lh)
				f.CellFormat(wd-2, lh, l, "", 0, "L", false, 0, "")
			}
			x += wd
		}
		f.SetXY(d.left, y+rh)
	}
	f.SetDrawColor(226, 232, 240)
	if header {
		drawRow(t.Columns, true, false)
	}
	for _, row := range t.Visible() {
		drawRow(row, false, false)
	}
	if t.Rest != nil {
		countCol := ""
		if t.CountCol > 0 && t.CountCol < len(t.Columns) {
			countCol = t.Columns[t.CountCol]
		}
		drawRow([]string{t.Rest.RestText(countCol)}, true, true)
	}
	f.SetDrawColor(0, 0, 0)
}

func (d *pdfDoc) chart(c Chart) {
	switch c.Kind {
	case ChartHeat:
		d.heat(c)
	case ChartBars:
		d.hbars(c)
	default:
		d.plot(c)
	}
}

func (d *pdfDoc) legend(x, y float64, ss []Series) {
	d.font("", 7)
	for i, s := range ss {
		d.color(palette[i%len(palette)])
		d.f.Rect(x, y, 3, 3, "F")
		d.f.Text(x+4, y+2.6, s.Name)
		x += 8 + d.f.GetStringWidth(s.Name)
	}
}

// plot draws a stacked-bar or line chart, with gridlines at the ticks of
// NiceTicks and each tick's count as its label.
func (d *pdfDoc) plot(c Chart) {
	f := d.f
	const ch = 55.0
	d.h3(c.Title, ch+4)
	x0, y0 := d.left+10, f.GetY()+6
	pw, ph := d.contentW()-12, ch-16
	stacked := c.Kind == ChartStacked
	ticks := NiceTicks(maxOf(c.Series, stacked))
	top := ticks.Top
	d.legend(x0, y0-5, c.Series)
	d.font("", 6)
	f.SetDrawColor(226, 232, 240)
	for _, v := range ticks.Values() {
		y := y0 + ph - ph*float64(v)/float64(top)
		f.Line(x0, y, x0+pw, y)
		lbl := itoa(v)
		f.Text(x0-1-f.GetStringWidth(lbl), y+0.8, lbl)
	}
	n := max(1, len(c.Labels))
	step := pw / float64(n)
	if stacked {
		for i := range c.Labels {
			base := y0 + ph
			for si, s := range c.Series {
				v := s.Values[i]
				if v == 0 {
					continue
				}
				h := ph * float64(v) / float64(top)
				base -= h
				d.color(palette[si%len(palette)])
				f.Rect(x0+step*float64(i)+step*0.15, base, step*0.7, h, "F")
			}
		}
	} else {
		f.SetLineWidth(0.5)
		for si, s := range c.Series {
			col := palette[si%len(palette)]
			f.SetDrawColor(col[0], col[1], col[2])
			for i := 1; i < len(s.Values); i++ {
				xa, xb := x0+step*float64(i-1)+step/2, x0+step*float64(i)+step/2
				ya, yb := y0+ph-ph*float64(s.Values[i-1])/float64(top), y0+ph-ph*float64(s.Values[i])/float64(top)
				f.Line(xa, ya, xb, yb)
			}
			d.color(col)
			for i, v := range s.Values {
				if v > 0 {
					f.Circle(x0+step*float64(i)+step/2, y0+ph-ph*float64(v)/float64(top), 0.7, "F")
				}
			}
		}
		f.SetLineWidth(0.2)
	}
	f.SetDrawColor(0, 0, 0)
	d.font("", 6)
	ls := labelStep(len(c.Labels))
	for i, l := range c.Labels {
		if i%ls == 0 {
			f.Text(x0+step*float64(i)+step/2-f.GetStringWidth(l)/2, y0+ph+4, l)
		}
	}
	f.SetY(y0 + ch - 6)
}

func (d *pdfDoc) hbars(c Chart) {
	f := d.f
	const rh = 5.0
	if len(c.Labels) == 0 {
		d.h3(c.Title, 5)
		d.para("No data.", 8, "I")
		return
	}
	d.h3(c.Title, rh*float64(len(c.Labels))+4)
	labelW := 55.0
	pw := d.contentW() - labelW - 15
	top := maxOf(c.Series, false)
	y := f.GetY() + 1
	d.font("", 7)
	for i, l := range c.Labels {
		v := c.Series[0].Values[i]
		lbl := truncate(l, 40)
		f.Text(d.left+labelW-2-f.GetStringWidth(lbl), y+3.4, lbl)
		wd := pw * float64(v) / float64(top)
		d.color(palette[0])
		f.Rect(d.left+labelW, y+0.8, wd, rh-1.6, "F")
		f.Text(d.left+labelW+wd+1.5, y+3.4, itoa(v))
		y += rh
	}
	f.SetY(y + 2)
}

// heat draws the path heat map with each cell's count printed in it.
func (d *pdfDoc) heat(c Chart) {
	f := d.f
	if len(c.Series) == 0 {
		d.h3(c.Title, 5)
		d.para("No in-scope path was accessed in the period.", 8, "I")
		return
	}
	const rh = 4.5
	pathW, totW := 60.0, 10.0
	cellW := (d.contentW() - pathW - totW) / float64(max(1, len(c.Labels)))
	m := maxOf(c.Series, false)
	d.h3(c.Title, rh*float64(min(len(c.Series), 6)+1))
	y := f.GetY()
	d.font("B", 5.5)
	ls := labelStep(len(c.Labels))
	for i, l := range c.Labels {
		if i%ls == 0 {
			f.Text(d.left+pathW+cellW*float64(i), y+3, l)
		}
	}
	f.Text(d.left+pathW+cellW*float64(len(c.Labels))+1, y+3, "Total")
	y += rh
	for _, s := range c.Series {
		if y+rh > d.h-d.bottom {
			f.AddPage()
			y = f.GetY()
		}
		d.font("", 6)
		f.Text(d.left, y+3.2, truncatePath(s.Name, pathW-2, f.GetStringWidth))
		var tot int64
		for i, v := range s.Values {
			tot += v
			r, g, b := heatColor(v, m)
			f.SetFillColor(r, g, b)
			f.SetDrawColor(226, 232, 240)
			x := d.left + pathW + cellW*float64(i)
			f.Rect(x, y, cellW, rh, "FD")
			if v > 0 {
				d.font("", 5)
				if r < 140 {
					f.SetTextColor(255, 255, 255)
				}
				lbl := itoa(v)
				f.Text(x+(cellW-f.GetStringWidth(lbl))/2, y+3.1, lbl)
				f.SetTextColor(26, 32, 44)
			}
		}
		d.font("B", 6)
		f.Text(d.left+pathW+cellW*float64(len(s.Values))+1, y+3.2, itoa(tot))
		y += rh
	}
	f.SetDrawColor(0, 0, 0)
	f.SetY(y + 2)
}

// truncatePath keeps the end of a path (its most specific part) within w,
// cutting at a '/' and marking the cut with "…/".
func truncatePath(p string, w float64, width func(string) float64) string {
	if width(p) <= w {
		return p
	}
	parts := strings.Split(p, "/")
	for i := 1; i < len(parts); i++ {
		s := "…/" + strings.Join(parts[i:], "/")
		if width(s) <= w {
			return s
		}
	}
	return truncate(p, 40)
}

func (d *pdfDoc) controls(r *Report) {
	d.f.AddPage()
	d.h2("Controls cited", 20)
	t := Table{Columns: []string{"Citation", "Text", "Confidence"}}
	for _, c := range r.Controls {
		txt := c.Text
		if txt == "" {
			txt = "No verified wording."
		} else {
			txt = "\u201c" + txt + "\u201d"
		}
		if c.Note != "" {
			txt += " Note: " + c.Note
		}
		t.Rows = append(t.Rows, []string{c.Citation + " - " + c.Title, txt, "[" + c.Confidence + "] " + compliance.ConfidenceText(c.Confidence)})
	}
	d.table(t, []float64{0.25, 0.55, 0.2})
	d.f.Ln(2)
	d.para("Every figure with a command can be recomputed with `vigil audit query --count` and those options (or GET /v1/sys/audit/query with the same parameters, counting every page); the HTML, CSV and JSON renderings list them too.", 8, "I")
}
