package reports

import (
	"fmt"
	"io"
	"strings"

	"github.com/go-pdf/fpdf"

	"github.com/vigilsec/vigil/compliance"
)

// PDF rendering uses github.com/go-pdf/fpdf: pure Go (no cgo, no external
// binary, no browser), maintained (the community fork of jung-kurt/gofpdf),
// with vector primitives (rectangles, lines, polygons) to draw the charts,
// core fonts (no font files to ship), deterministic output once the
// creation date is fixed, and compression. Text goes through its cp1252
// translator; characters outside cp1252 print as "?".

type pdfDoc struct {
	f      *fpdf.Fpdf
	tr     func(string) string
	w, h   float64
	left   float64
	right  float64
	bottom float64
}

func (d *pdfDoc) text(s string) string { return d.tr(s) }

func (d *pdfDoc) contentW() float64 { return d.w - d.left - d.right }

// need starts a new page unless h mm fit.
func (d *pdfDoc) need(h float64) {
	if d.f.GetY()+h > d.h-d.bottom {
		d.f.AddPage()
	}
}

func (d *pdfDoc) font(style string, size float64) { d.f.SetFont("Helvetica", style, size) }

func (d *pdfDoc) color(c [3]int) { d.f.SetFillColor(c[0], c[1], c[2]) }

var resultColors = map[string][3]int{ResultPass: {56, 161, 105}, ResultFail: {197, 48, 48}, ResultAttention: {214, 158, 46},
	ResultManual: {128, 90, 213}, ResultInfo: {74, 85, 104}}

// RenderPDF writes the report as a PDF (A4) with the same content as the
// HTML: sections, figures, tables, charts and the cited controls.
func RenderPDF(w io.Writer, r *Report) error {
	f := fpdf.New("P", "mm", "A4", "")
	f.SetCreationDate(r.GeneratedAt)
	f.SetModificationDate(r.GeneratedAt)
	f.SetCatalogSort(true)
	f.SetCompression(true)
	f.SetTitle(r.Title, true)
	f.SetCreator("Vigil", true)
	f.SetProducer("Vigil reports (go-pdf/fpdf)", true)
	f.SetMargins(15, 15, 15)
	f.SetAutoPageBreak(true, 15)
	f.AliasNbPages("{nb}")
	pw, ph := f.GetPageSize()
	d := &pdfDoc{f: f, tr: f.UnicodeTranslatorFromDescriptor(""), w: pw, h: ph, left: 15, right: 15, bottom: 18}
	title := r.Title
	f.SetFooterFunc(func() {
		f.SetY(-12)
		d.font("", 8)
		f.SetTextColor(113, 128, 150)
		f.CellFormat(0, 5, d.text(fmt.Sprintf("%s, %s to %s - page %d of {nb}", title, r.From.Format("2006-01-02"), r.To.Format("2006-01-02"), f.PageNo())), "", 0, "C", false, 0, "")
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
	return f.Output(w)
}

func (d *pdfDoc) para(s string, size float64, style string) {
	d.font(style, size)
	d.f.MultiCell(0, size*0.45, d.text(s), "", "L", false)
}

func (d *pdfDoc) header(r *Report) {
	f := d.f
	d.font("B", 18)
	f.MultiCell(0, 8, d.text(r.Title), "", "L", false)
	d.para(r.Regulation, 9, "")
	f.Ln(2)
	meta := [][2]string{
		{"Period", fmt.Sprintf("%s to %s (end exclusive)", r.From.Format("2006-01-02 15:04 UTC"), r.To.Format("2006-01-02 15:04 UTC"))},
		{"Generated", r.GeneratedAt.Format("2006-01-02 15:04 UTC") + nodeSuffix(r.NodeID)},
		{"Query backend", r.Backend},
	}
	if cp := r.Checkpoint; cp != nil {
		meta = append(meta, [2]string{"Signed checkpoint", fmt.Sprintf("node %s seq %d, key %s, %s", cp.NodeID, cp.Seq, cp.KeyID, cp.Time.UTC().Format("2006-01-02 15:04:05 UTC"))},
			[2]string{"Checkpoint hash", cp.Hash})
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
	d.kvTable(meta)
	d.para(r.Scope.Note, 8, "I")
	f.Ln(2)
	for _, c := range r.Caveats {
		f.SetFillColor(255, 250, 240)
		d.font("", 8)
		f.MultiCell(0, 3.8, d.text(c), "L", "L", true)
		f.Ln(2)
	}
	d.h2("Summary")
	var rows [][2]string
	for _, fg := range r.Summary {
		rows = append(rows, [2]string{fg.Label, fg.Display()})
	}
	d.kvTable(rows)
	f.Ln(2)
	d.table(Table{Columns: []string{"Section", "Controls", "Result"}, Rows: func() [][]string {
		var out [][]string
		for _, s := range r.Sections {
			out = append(out, []string{s.Title, controlList(s.Controls), strings.ToUpper(s.Result)})
		}
		return out
	}()}, []float64{0.35, 0.5, 0.15})
}

func nodeSuffix(n string) string {
	if n == "" {
		return ""
	}
	return " on node " + n
}

func (d *pdfDoc) h2(s string) {
	d.need(20)
	d.f.Ln(3)
	d.font("B", 13)
	d.f.SetTextColor(43, 108, 176)
	d.f.MultiCell(0, 6, d.text(s), "B", "L", false)
	d.f.SetTextColor(26, 32, 44)
	d.f.Ln(1)
}

func (d *pdfDoc) h3(s string) {
	d.need(14)
	d.f.Ln(1)
	d.font("B", 10)
	d.f.MultiCell(0, 5, d.text(s), "", "L", false)
}

func (d *pdfDoc) kvTable(rows [][2]string) {
	t := Table{Columns: []string{"", ""}}
	for _, r := range rows {
		t.Rows = append(t.Rows, []string{r[0], r[1]})
	}
	d.tableOpts(t, []float64{0.62, 0.38}, false)
}

func (d *pdfDoc) section(r *Report, s Section) {
	f := d.f
	f.AddPage()
	d.h2(s.Title)
	for _, c := range s.Controls {
		d.para(fmt.Sprintf("%s - %s [%s]", c.Citation, c.Title, c.Confidence), 8, "")
	}
	f.Ln(1)
	d.need(10)
	col := resultColors[s.Result]
	d.color(col)
	f.SetTextColor(255, 255, 255)
	d.font("B", 9)
	label := strings.ToUpper(s.Result)
	bw := f.GetStringWidth(label) + 6
	f.CellFormat(bw, 6, label, "", 0, "C", true, 0, "")
	f.SetTextColor(26, 32, 44)
	f.SetX(d.left + bw + 2)
	d.font("", 9)
	f.MultiCell(d.contentW()-bw-2, 6, d.text(s.ResultText), "", "L", false)
	f.Ln(1)
	var rows [][2]string
	for _, fg := range s.Figures {
		rows = append(rows, [2]string{fg.Label, fg.Display()})
	}
	d.kvTable(rows)
	for _, id := range s.Charts {
		for _, c := range r.Charts {
			if c.ID == id {
				d.chart(c)
			}
		}
	}
	for _, t := range s.Tables {
		d.h3(t.Title)
		if len(t.Rows) == 0 {
			d.para(t.Empty, 8, "I")
			continue
		}
		d.table(t, nil)
	}
	for _, n := range s.Notes {
		f.Ln(1)
		d.para(n, 8, "I")
	}
}

// table draws a table with wrapped cells; widths are fractions of the
// content width (nil: equal).
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
			// Give the first and path-like columns more room.
			widths[0] = 1.6 / float64(n+1)
			for i := 1; i < n; i++ {
				widths[i] = (1 - widths[0]) / float64(n-1)
			}
		}
	}
	cw := d.contentW()
	const lh = 3.8
	drawRow := func(cells []string, bold bool) {
		style := ""
		if bold {
			style = "B"
			f.SetFillColor(247, 250, 252)
		}
		d.font(style, 8)
		lines := 1
		for i, c := range cells {
			if l := len(f.SplitLines([]byte(d.text(c)), widths[i]*cw-2)); l > lines {
				lines = l
			}
		}
		rh := float64(lines)*lh + 1
		if f.GetY()+rh > d.h-d.bottom {
			f.AddPage()
		}
		x, y := d.left, f.GetY()
		for i, c := range cells {
			wd := widths[i] * cw
			f.SetXY(x, y)
			if bold {
				f.Rect(x, y, wd, rh, "F")
			}
			f.Rect(x, y, wd, rh, "D")
			f.SetXY(x+1, y+0.5)
			f.MultiCell(wd-2, lh, d.text(c), "", "L", false)
			x += wd
		}
		f.SetXY(d.left, y+rh)
	}
	f.SetDrawColor(226, 232, 240)
	if header {
		drawRow(t.Columns, true)
	}
	for _, row := range t.Rows {
		drawRow(row, false)
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
		d.f.Text(x+4, y+2.6, d.text(s.Name))
		x += 8 + d.f.GetStringWidth(s.Name)
	}
}

// plot draws a stacked-bar or line chart.
func (d *pdfDoc) plot(c Chart) {
	f := d.f
	const ch = 55.0
	d.h3(c.Title)
	d.need(ch + 4)
	x0, y0 := d.left+10, f.GetY()+6
	pw, ph := d.contentW()-12, ch-16
	stacked := c.Kind == ChartStacked
	top := niceMax(maxOf(c.Series, stacked))
	d.legend(x0, y0-5, c.Series)
	d.font("", 6)
	f.SetDrawColor(226, 232, 240)
	for i := 0; i <= 4; i++ {
		y := y0 + ph - ph*float64(i)/4
		f.Line(x0, y, x0+pw, y)
		lbl := itoa(top * int64(i) / 4)
		f.Text(x0-1-f.GetStringWidth(lbl), y+1, lbl)
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
	d.h3(c.Title)
	if len(c.Labels) == 0 {
		d.para("No data.", 8, "I")
		return
	}
	const rh = 5.0
	d.need(rh*float64(len(c.Labels)) + 4)
	labelW := 55.0
	pw := d.contentW() - labelW - 15
	top := maxOf(c.Series, false)
	y := f.GetY() + 1
	d.font("", 7)
	for i, l := range c.Labels {
		v := c.Series[0].Values[i]
		lbl := d.text(truncate(l, 40))
		f.Text(d.left+labelW-2-f.GetStringWidth(lbl), y+3.4, lbl)
		wd := pw * float64(v) / float64(top)
		d.color(palette[0])
		f.Rect(d.left+labelW, y+0.8, wd, rh-1.6, "F")
		f.Text(d.left+labelW+wd+1.5, y+3.4, itoa(v))
		y += rh
	}
	f.SetY(y + 2)
}

func (d *pdfDoc) heat(c Chart) {
	f := d.f
	d.h3(c.Title)
	if len(c.Series) == 0 {
		d.para("No in-scope path was accessed in the period.", 8, "I")
		return
	}
	const rh = 4.5
	pathW, totW := 60.0, 10.0
	cellW := (d.contentW() - pathW - totW) / float64(max(1, len(c.Labels)))
	m := maxOf(c.Series, false)
	d.need(rh * float64(len(c.Series)+2))
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
		f.Text(d.left, y+3.2, d.text(truncate(s.Name, 48)))
		var tot int64
		for i, v := range s.Values {
			tot += v
			r, g, b := heatColor(v, m)
			f.SetFillColor(r, g, b)
			f.SetDrawColor(226, 232, 240)
			f.Rect(d.left+pathW+cellW*float64(i), y, cellW, rh, "FD")
		}
		d.font("B", 6)
		f.Text(d.left+pathW+cellW*float64(len(s.Values))+1, y+3.2, itoa(tot))
		y += rh
	}
	f.SetDrawColor(0, 0, 0)
	f.SetY(y + 2)
}

func (d *pdfDoc) controls(r *Report) {
	d.f.AddPage()
	d.h2("Controls cited")
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
	d.para("Every figure can be recomputed from the query API: the HTML, CSV and JSON renderings list, for each figure, the GET /v1/sys/audit/query parameters and the predicate to apply.", 8, "I")
}
