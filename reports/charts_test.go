package reports

import (
	"bytes"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/core/testsvc"
)

// isNiceStep reports whether s is 1, 2 or 5 times a power of ten.
func isNiceStep(s int64) bool {
	for s >= 10 && s%10 == 0 {
		s /= 10
	}
	return s == 1 || s == 2 || s == 5
}

func TestNiceTicks(t *testing.T) {
	for m := int64(0); m <= 20000; m++ {
		tk := NiceTicks(m)
		if tk.Top < m || tk.Step < 1 || !isNiceStep(tk.Step) || tk.Top%tk.Step != 0 || tk.Top/tk.Step > maxTicks {
			t.Fatalf("NiceTicks(%d) = %+v", m, tk)
		}
		if m > 0 && tk.Top-tk.Step >= m {
			t.Fatalf("NiceTicks(%d) = %+v: a tick too many", m, tk)
		}
	}
	if got := NiceTicks(4); got != (Ticks{Top: 4, Step: 1}) {
		t.Fatalf("NiceTicks(4) = %+v: a count of 4 must sit on a gridline labelled 4", got)
	}
}

// checkTickLabels checks one chart's y-axis read back from a rendering:
// labels (value, vertical position) against the gridline positions. Every
// label is an integer on a gridline; the labels are 0, s, 2s, ... for a
// 1/2/5x10^n step s; and the position is linear in the value.
func checkTickLabels(t *testing.T, what string, labels map[float64]int64, grid []float64, tol float64) {
	t.Helper()
	if len(labels) < 2 || len(labels) != len(grid) {
		t.Fatalf("%s: %d labels for %d gridlines", what, len(labels), len(grid))
	}
	ys := make([]float64, 0, len(labels))
	for y := range labels {
		ys = append(ys, y)
	}
	sort.Sort(sort.Reverse(sort.Float64Slice(ys))) // bottom (0) first
	sort.Sort(sort.Reverse(sort.Float64Slice(grid)))
	step := labels[ys[1]] - labels[ys[0]]
	if labels[ys[0]] != 0 || step < 1 || !isNiceStep(step) {
		t.Fatalf("%s: labels from the bottom %v: want 0 and a 1/2/5x10^n step", what, labels)
	}
	unit := (grid[0] - grid[1]) / float64(step)
	for i, y := range ys {
		v := labels[y]
		if v != int64(i)*step {
			t.Errorf("%s: label %d at position %d, want %d", what, v, i, int64(i)*step)
		}
		if math.Abs(y-grid[i]) > tol {
			t.Errorf("%s: label %d at y=%.2f, its gridline at y=%.2f", what, v, y, grid[i])
		}
		if want := grid[0] - unit*float64(v); math.Abs(grid[i]-want) > tol {
			t.Errorf("%s: gridline of %d at y=%.2f, linear scale puts it at %.2f", what, v, grid[i], want)
		}
	}
}

var (
	svgGrid   = regexp.MustCompile(`<line class="grid" x1="[^"]+" y1="([0-9.]+)"`)
	svgTick   = regexp.MustCompile(`<text class="tick" x="[^"]+" y="([0-9.]+)"[^>]*>([^<]*)</text>`)
	svgBar    = regexp.MustCompile(`<rect class="bar" x="[^"]+" y="([0-9.]+)" width="[^"]+" height="([0-9.]+)"[^>]*><title>[^<]*: (\d+)</title>`)
	pdfLine   = regexp.MustCompile(`([0-9.]+) ([0-9.]+) m ([0-9.]+) ([0-9.]+) l S`)
	bboxPage  = regexp.MustCompile(`(?s)<page width="([0-9.]+)" height="([0-9.]+)">(.*?)</page>`)
	bboxWord  = regexp.MustCompile(`<word xMin="([0-9.]+)" yMin="([0-9.]+)" xMax="([0-9.]+)" yMax="([0-9.]+)">([^<]*)</word>`)
	pdfStream = regexp.MustCompile(`(?s)stream\n(.*?)\nendstream`)
)

func atof(s string) float64 { f, _ := strconv.ParseFloat(s, 64); return f }

// TestChartTicksReadBackSVG reads every tick label of the HTML's SVG
// charts back and checks it against its gridline, and every bar's height
// against the scale the gridlines define.
func TestChartTicksReadBackSVG(t *testing.T) {
	r, _ := synthReport(t, KindHIPAA)
	// A chart whose maximum is 4 (the count an earlier version drew as
	// 3.2 between quarter gridlines) and one with large counts.
	r.Charts = append(r.Charts,
		Chart{ID: "four", Title: "four", Kind: ChartStacked, Labels: []string{"a", "b", "c"}, Series: []Series{{Name: "n", Values: []int64{1, 4, 3}}}},
		Chart{ID: "big", Title: "big", Kind: ChartStacked, Labels: []string{"a", "b"}, Series: []Series{{Name: "n", Values: []int64{13517, 977}}, {Name: "m", Values: []int64{5, 2}}}})
	svgs := 0
	for _, c := range r.Charts {
		s := ChartSVG(c)
		if s == "" || c.Kind == ChartBars {
			continue
		}
		svgs++
		var grid []float64
		for _, m := range svgGrid.FindAllStringSubmatch(s, -1) {
			grid = append(grid, atof(m[1]))
		}
		labels := map[float64]int64{}
		for _, m := range svgTick.FindAllStringSubmatch(s, -1) {
			v, err := strconv.ParseInt(m[2], 10, 64)
			if err != nil {
				t.Fatalf("%s: tick label %q is not an integer", c.ID, m[2])
			}
			labels[atof(m[1])-3] = v // the label's baseline is 3 below its line
		}
		checkTickLabels(t, "svg "+c.ID, labels, grid, 0.11) // coordinates are printed to 0.1
		sort.Sort(sort.Reverse(sort.Float64Slice(grid)))
		tk := NiceTicks(maxOf(c.Series, c.Kind == ChartStacked))
		unit := (grid[0] - grid[1]) / float64(tk.Step)
		for _, m := range svgBar.FindAllStringSubmatch(s, -1) {
			h, v := atof(m[2]), atof(m[3])
			if math.Abs(h-v*unit) > 0.1 {
				t.Errorf("svg %s: a bar of %v is %.1f high, the gridlines say %.1f", c.ID, v, h, v*unit)
			}
		}
	}
	if svgs < 4 {
		t.Fatalf("only %d SVG charts checked", svgs)
	}
}

// TestChartTicksReadBackPDF renders the PDF without stream compression,
// reads the gridlines from the page content (line operators) and the tick
// labels with pdftotext -bbox, and checks each label against its
// gridline.
func TestChartTicksReadBackPDF(t *testing.T) {
	testsvc.Tool(t, "pdftotext")
	r, _ := synthReport(t, KindHIPAA)
	var buf bytes.Buffer
	if err := renderPDF(&buf, r, false); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "r.pdf")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("pdftotext", "-bbox", p, "-").Output()
	if err != nil {
		t.Fatal(err)
	}
	pages := bboxPage.FindAllStringSubmatch(string(out), -1)
	var contents []string
	for _, m := range pdfStream.FindAllStringSubmatch(buf.String(), -1) {
		if strings.Contains(m[1], " Tf") && strings.Contains(m[1], "BT ") {
			contents = append(contents, m[1])
		}
	}
	if len(contents) != len(pages) {
		t.Fatalf("%d page content streams, %d pages", len(contents), len(pages))
	}
	charts := 0
	for i, pg := range pages {
		h := atof(pg[2])
		// Gridlines: horizontal lines across the plot width.
		var grid []float64
		x0 := 0.0
		for _, m := range pdfLine.FindAllStringSubmatch(contents[i], -1) {
			xa, ya, xb, yb := atof(m[1]), atof(m[2]), atof(m[3]), atof(m[4])
			if ya == yb && xb-xa > 470 && xb-xa < 480 { // the plot width, 168 mm
				grid = append(grid, h-ya)
				x0 = xa
			}
		}
		if len(grid) == 0 {
			continue
		}
		// Split the page's gridlines into charts: the top tick is always
		// the plot's top, so a chart's lines span exactly its plot
		// height (39 mm) from the topmost one.
		const plotH = 39 * 72 / 25.4
		sort.Float64s(grid)
		var groups [][]float64
		for j, y := range grid {
			if j == 0 || y > groups[len(groups)-1][0]+plotH+0.5 {
				groups = append(groups, nil)
			}
			groups[len(groups)-1] = append(groups[len(groups)-1], y)
		}
		for _, g := range groups {
			lo, hi := g[0], g[0]
			for _, y := range g {
				lo, hi = math.Min(lo, y), math.Max(hi, y)
			}
			labels := map[float64]int64{}
			for _, w := range bboxWord.FindAllStringSubmatch(pg[3], -1) {
				xMax, yMin, yMax := atof(w[3]), atof(w[2]), atof(w[4])
				mid := (yMin + yMax) / 2
				if xMax > x0 || xMax < x0-20 || mid < lo-4 || mid > hi+4 {
					continue
				}
				v, err := strconv.ParseInt(w[5], 10, 64)
				if err != nil {
					t.Fatalf("page %d: tick label %q is not an integer", i+1, w[5])
				}
				labels[mid] = v
			}
			checkTickLabels(t, "pdf page "+strconv.Itoa(i+1), labels, g, 2.5)
			charts++
		}
	}
	if charts < 2 {
		t.Fatalf("only %d PDF charts checked", charts)
	}
}

// TestPDFA: the PDF declares PDF/A-2b and has what the declaration needs:
// every font embedded (pdffonts), the XMP identification, an sRGB output
// intent and a file identifier in the trailer; the cover states the
// evidence manifest's hash.
func TestPDFA(t *testing.T) {
	pdffonts := testsvc.Tool(t, "pdffonts")
	r, _ := synthReport(t, KindNRB)
	r.ManifestSHA256 = strings.Repeat("ab", 32)
	var buf bytes.Buffer
	if err := RenderPDF(&buf, r); err != nil {
		t.Fatal(err)
	}
	pdf := buf.Bytes()
	for _, want := range []string{"<pdfaid:part>2</pdfaid:part>", "<pdfaid:conformance>B</pdfaid:conformance>", "/S /GTS_PDFA1", "/DestOutputProfile",
		"evidence manifest sha256:" + r.ManifestSHA256} {
		if !bytes.Contains(pdf, []byte(want)) {
			t.Errorf("the PDF lacks %q", want)
		}
	}
	if !regexp.MustCompile(`trailer\n<<\n/ID \[<[0-9a-f]{32}><[0-9a-f]{32}>\]`).Match(pdf) {
		t.Error("no file identifier in the trailer")
	}
	p := filepath.Join(t.TempDir(), "r.pdf")
	if err := os.WriteFile(p, pdf, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(pdffonts, p).Output()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 3 {
		t.Fatalf("pdffonts: %s", out)
	}
	for _, l := range lines[2:] {
		f := strings.Fields(l)
		if len(f) < 5 || f[len(f)-5] != "yes" {
			t.Errorf("font not embedded: %s", l)
		}
	}
	text := pdfText(t, r)
	if !strings.Contains(text, r.ManifestSHA256) {
		t.Error("the cover does not print the manifest hash")
	}
}
