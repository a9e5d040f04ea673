package reports

import (
	"fmt"
	"html"
	"strings"
)

// Chart palette (series in order), shared by the SVG and PDF renderers.
var palette = [][3]int{{43, 108, 176}, {197, 48, 48}, {214, 158, 46}, {56, 161, 105}, {128, 90, 213}}

func rgb(i int) string {
	c := palette[i%len(palette)]
	return fmt.Sprintf("#%02x%02x%02x", c[0], c[1], c[2])
}

// heatColor maps v/max to a white-to-blue shade.
func heatColor(v, m int64) (int, int, int) {
	if v <= 0 || m <= 0 {
		return 255, 255, 255
	}
	f := 0.15 + 0.85*float64(v)/float64(m)
	return int(255 - f*(255-43)), int(255 - f*(255-108)), int(255 - f*(255-176))
}

func esc(s string) string { return html.EscapeString(s) }

func f1(v float64) string { return fmt.Sprintf("%.1f", v) }

// labelStep thins x-axis labels to about 16.
func labelStep(n int) int { return max(1, (n+15)/16) }

// ChartSVG draws a chart as a standalone SVG element (heat charts are drawn
// as an HTML table by the HTML renderer and return "").
func ChartSVG(c Chart) string {
	switch c.Kind {
	case ChartStacked:
		return stackedSVG(c, true)
	case ChartLines:
		return linesSVG(c)
	case ChartBars:
		return hbarsSVG(c)
	}
	return ""
}

const (
	svgW, svgH           = 720.0, 240.0
	padL, padR, padT, pB = 48.0, 12.0, 28.0, 40.0
)

func svgOpen(b *strings.Builder, c Chart, h float64) {
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %s %s" width="%s" height="%s" role="img" aria-label="%s">`,
		f1(svgW), f1(h), f1(svgW), f1(h), esc(c.Title))
	fmt.Fprintf(b, `<title>%s</title><rect width="100%%" height="100%%" fill="#fff"/>`, esc(c.Title))
}

func legend(b *strings.Builder, ss []Series) {
	x := padL
	for i, s := range ss {
		fmt.Fprintf(b, `<rect x="%s" y="8" width="10" height="10" fill="%s"/><text x="%s" y="17" font-size="11">%s</text>`, f1(x), rgb(i), f1(x+14), esc(s.Name))
		x += 24 + 7*float64(len(s.Name))
	}
}

// yAxis draws the gridlines and their labels: one per tick of t, each
// label the exact count at its gridline's height.
func yAxis(b *strings.Builder, t Ticks, plotH float64) {
	for _, v := range t.Values() {
		y := padT + plotH - plotH*float64(v)/float64(t.Top)
		fmt.Fprintf(b, `<line class="grid" x1="%s" y1="%s" x2="%s" y2="%s" stroke="#e2e8f0"/>`, f1(padL), f1(y), f1(svgW-padR), f1(y))
		fmt.Fprintf(b, `<text class="tick" x="%s" y="%s" font-size="10" text-anchor="end">%d</text>`, f1(padL-4), f1(y+3), v)
	}
}

func xLabels(b *strings.Builder, labels []string, x0, step, y float64) {
	ls := labelStep(len(labels))
	for i, l := range labels {
		if i%ls != 0 {
			continue
		}
		fmt.Fprintf(b, `<text x="%s" y="%s" font-size="10" text-anchor="middle">%s</text>`, f1(x0+step*float64(i)+step/2), f1(y), esc(l))
	}
}

func stackedSVG(c Chart, stacked bool) string {
	var b strings.Builder
	svgOpen(&b, c, svgH)
	plotW, plotH := svgW-padL-padR, svgH-padT-pB
	ticks := NiceTicks(maxOf(c.Series, stacked))
	top := ticks.Top
	yAxis(&b, ticks, plotH)
	n := max(1, len(c.Labels))
	step := plotW / float64(n)
	bw := step * 0.7
	for i := range c.Labels {
		base := padT + plotH
		for si, s := range c.Series {
			v := s.Values[i]
			if v == 0 {
				continue
			}
			h := plotH * float64(v) / float64(top)
			base -= h
			fmt.Fprintf(&b, `<rect class="bar" x="%s" y="%s" width="%s" height="%s" fill="%s"><title>%s %s: %d</title></rect>`,
				f1(padL+step*float64(i)+(step-bw)/2), f1(base), f1(bw), f1(h), rgb(si), esc(c.Labels[i]), esc(s.Name), v)
		}
	}
	xLabels(&b, c.Labels, padL, step, svgH-pB+14)
	legend(&b, c.Series)
	b.WriteString(`</svg>`)
	return b.String()
}

func linesSVG(c Chart) string {
	var b strings.Builder
	svgOpen(&b, c, svgH)
	plotW, plotH := svgW-padL-padR, svgH-padT-pB
	ticks := NiceTicks(maxOf(c.Series, false))
	top := ticks.Top
	yAxis(&b, ticks, plotH)
	n := max(1, len(c.Labels))
	step := plotW / float64(n)
	for si, s := range c.Series {
		pts := make([]string, len(s.Values))
		for i, v := range s.Values {
			pts[i] = f1(padL+step*float64(i)+step/2) + "," + f1(padT+plotH-plotH*float64(v)/float64(top))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`, rgb(si), strings.Join(pts, " "))
		for i, v := range s.Values {
			if v > 0 {
				fmt.Fprintf(&b, `<circle cx="%s" cy="%s" r="3" fill="%s"><title>%s %s: %d</title></circle>`,
					f1(padL+step*float64(i)+step/2), f1(padT+plotH-plotH*float64(v)/float64(top)), rgb(si), esc(c.Labels[i]), esc(s.Name), v)
			}
		}
	}
	xLabels(&b, c.Labels, padL, step, svgH-pB+14)
	legend(&b, c.Series)
	b.WriteString(`</svg>`)
	return b.String()
}

func hbarsSVG(c Chart) string {
	var b strings.Builder
	rowH := 20.0
	h := padT + rowH*float64(max(1, len(c.Labels))) + 12
	svgOpen(&b, c, h)
	if len(c.Labels) == 0 {
		fmt.Fprintf(&b, `<text x="%s" y="%s" font-size="11">no data</text></svg>`, f1(padL), f1(padT+12))
		return b.String()
	}
	labelW := 200.0
	plotW := svgW - labelW - padR - 40
	top := maxOf(c.Series, false)
	for i, l := range c.Labels {
		v := c.Series[0].Values[i]
		y := padT + rowH*float64(i)
		w := plotW * float64(v) / float64(top)
		fmt.Fprintf(&b, `<text x="%s" y="%s" font-size="11" text-anchor="end">%s</text>`, f1(labelW-6), f1(y+13), esc(truncate(l, 32)))
		fmt.Fprintf(&b, `<rect x="%s" y="%s" width="%s" height="%s" fill="%s"><title>%s: %d</title></rect>`, f1(labelW), f1(y+3), f1(w), f1(rowH-6), rgb(0), esc(l), v)
		fmt.Fprintf(&b, `<text x="%s" y="%s" font-size="11">%d</text>`, f1(labelW+w+4), f1(y+13), v)
	}
	fmt.Fprintf(&b, `<text x="%s" y="16" font-size="11">%s</text>`, f1(labelW), esc(c.Series[0].Name))
	b.WriteString(`</svg>`)
	return b.String()
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
