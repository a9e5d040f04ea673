package reports

import (
	"html/template"
	"strings"
)

// breakAfter are the characters after which a long token (a path, a query
// string) may wrap: never inside a word.
const breakAfter = "/&,;="

// wrapHTML escapes s and adds a line-break opportunity (<wbr>) after every
// '/', '&', ',', ';' and '=', so a long path wraps at its separators in a
// table cell instead of overflowing it or breaking mid-word.
func wrapHTML(s string) template.HTML {
	var b strings.Builder
	start := 0
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(breakAfter, s[i]) >= 0 {
			b.WriteString(template.HTMLEscapeString(s[start : i+1]))
			b.WriteString("<wbr>")
			start = i + 1
		}
	}
	b.WriteString(template.HTMLEscapeString(s[start:]))
	return template.HTML(b.String()) //nolint:gosec // escaped above
}

// wrapLines breaks s into lines no wider than w according to width: at
// spaces first, then a word too long for a line after one of its
// separators (breakAfter), and only a run without any separator that is
// wider than a whole line is cut where it must be.
func wrapLines(s string, w float64, width func(string) float64) []string {
	var lines []string
	for _, para := range strings.Split(s, "\n") {
		lines = append(lines, wrapPara(para, w, width)...)
	}
	return lines
}

func wrapPara(s string, w float64, width func(string) float64) []string {
	var lines []string
	cur := ""
	flush := func() {
		lines = append(lines, cur)
		cur = ""
	}
	for _, word := range strings.Fields(s) {
		cand := word
		if cur != "" {
			cand = cur + " " + word
		}
		if width(cand) <= w {
			cur = cand
			continue
		}
		if cur != "" && width(word) <= w {
			flush()
			cur = word
			continue
		}
		// The word does not fit on a line of its own: split it at its
		// separators, filling the current line first.
		for _, piece := range splitAfterSeparators(word) {
			sep := ""
			if cur != "" && !strings.ContainsRune(breakAfter, rune(cur[len(cur)-1])) {
				sep = " "
			}
			if width(cur+sep+piece) <= w {
				cur += sep + piece
				continue
			}
			if cur != "" {
				flush()
			}
			for width(piece) > w { // no separator inside: cut by width
				n := fit(piece, w, width)
				lines = append(lines, piece[:n])
				piece = piece[n:]
			}
			cur = piece
		}
	}
	if cur != "" || len(lines) == 0 {
		flush()
	}
	return lines
}

// splitAfterSeparators cuts a word after each separator character.
func splitAfterSeparators(word string) []string {
	var out []string
	start := 0
	for i := 0; i < len(word); i++ {
		if strings.IndexByte(breakAfter, word[i]) >= 0 {
			out = append(out, word[start:i+1])
			start = i + 1
		}
	}
	if start < len(word) {
		out = append(out, word[start:])
	}
	return out
}

// fit is the longest prefix of s (in bytes, on a rune boundary, at least
// one rune) no wider than w.
func fit(s string, w float64, width func(string) float64) int {
	n := 0
	for i := range s {
		if i > 0 && width(s[:i]) > w {
			break
		}
		n = i
	}
	if width(s) <= w {
		return len(s)
	}
	if n == 0 {
		for i := range s {
			if i > 0 {
				return i
			}
		}
		return len(s)
	}
	return n
}
