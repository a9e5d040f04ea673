package enginetest

import (
	"regexp/syntax"
	"strings"
	"unicode"

	"github.com/vigilsec/vigil/core/framework"
)

// ExamplePath returns a path that route's pattern matches, built from the
// pattern's syntax tree: every repetition is taken once (so captures are
// non-empty), alternations take their first branch, and character classes
// prefer 'a'. When that does not match (an anchored or look-alike pattern),
// a second attempt takes optional parts zero times. ok is false when neither
// matches.
func ExamplePath(route *framework.Route) (string, bool) {
	re, err := syntax.Parse(route.Pattern, syntax.Perl)
	if err != nil {
		return "", false
	}
	re = re.Simplify()
	for _, once := range []bool{true, false} {
		var b strings.Builder
		generate(&b, re, once)
		p := b.String()
		if _, ok := route.Match(p); ok {
			return p, true
		}
	}
	return "", false
}

func generate(b *strings.Builder, re *syntax.Regexp, once bool) {
	switch re.Op {
	case syntax.OpLiteral:
		b.WriteString(string(re.Rune))
	case syntax.OpCharClass:
		b.WriteRune(pickRune(re.Rune))
	case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		b.WriteRune('x')
	case syntax.OpCapture:
		generate(b, re.Sub[0], once)
	case syntax.OpStar, syntax.OpQuest:
		if once {
			generate(b, re.Sub[0], once)
		}
	case syntax.OpPlus:
		generate(b, re.Sub[0], once)
	case syntax.OpRepeat:
		n := re.Min
		if n == 0 && once && re.Max != 0 {
			n = 1
		}
		for range n {
			generate(b, re.Sub[0], once)
		}
	case syntax.OpConcat:
		for _, s := range re.Sub {
			generate(b, s, once)
		}
	case syntax.OpAlternate:
		generate(b, re.Sub[0], once)
	}
	// Empty-width operators (anchors, boundaries, empty match) add nothing.
}

// pickRune picks a readable rune from a character class given as range
// pairs: 'a' when the class has it, else another common path character,
// else the first printable rune.
func pickRune(ranges []rune) rune {
	in := func(r rune) bool {
		for i := 0; i+1 < len(ranges); i += 2 {
			if ranges[i] <= r && r <= ranges[i+1] {
				return true
			}
		}
		return false
	}
	for _, r := range "a0A-_." {
		if in(r) {
			return r
		}
	}
	for i := 0; i+1 < len(ranges); i += 2 {
		for r := ranges[i]; r <= ranges[i+1] && r < ranges[i]+256; r++ {
			if unicode.IsPrint(r) {
				return r
			}
		}
	}
	if len(ranges) > 0 {
		return ranges[0]
	}
	return 'a'
}
