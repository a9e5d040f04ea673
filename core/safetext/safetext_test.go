package safetext

import (
	"encoding/json"
	"testing"
)

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"secret/data/app":                     "secret/data/app",
		"secret/data/\u202etxt.exe":           `secret/data/\u202etxt.exe`,
		"a\u2066b\u2069c\u200ed\u200fe\u061c": `a\u2066b\u2069c\u200ed\u200fe\u061c`,
		"zero\u200bwidth\ufeffbom":            `zero\u200bwidth\ufeffbom`,
		"bell\x07 esc\x1b":                    `bell\u0007 esc\u001b`,
		"x\xffy":                              `x\xffy`,
		`x\u202ey`:                            `x\\u202ey`, // a literal look-alike stays distinct
		"tab\tnewline\n":                      "tab\tnewline\n",
		"café":                                "café",
	} {
		if got := Escape(in); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
	}
	// The two masquerading paths of the classic attack render differently.
	a, b := Escape("invoice\u202egpj.exe"), Escape("invoiceexe.jpg")
	if a == b {
		t.Fatal("two different paths render the same")
	}
}

func TestEscapeJSONKeepsTheValue(t *testing.T) {
	in, _ := json.Marshal(map[string]string{"path": "a\u202eb\u200bc", "plain": "x"})
	out := EscapeJSON(in)
	for _, r := range string(out) {
		if Bidi(r) || r == 0x200b {
			t.Fatalf("raw %U left in %s", r, out)
		}
	}
	var back map[string]string
	if err := json.Unmarshal(out, &back); err != nil || back["path"] != "a\u202eb\u200bc" || back["plain"] != "x" {
		t.Fatalf("value changed: %v %v", back, err)
	}
}

func FuzzEscapeIsInjective(f *testing.F) {
	f.Add("a\u202eb", `a\u202eb`)
	f.Add("\\", `\\`)
	f.Add("\xff", `\xff`)
	f.Fuzz(func(t *testing.T, a, b string) {
		if a != b && Escape(a) == Escape(b) {
			t.Fatalf("%q and %q render the same: %q", a, b, Escape(a))
		}
		for _, r := range Escape(a) {
			if hidden(r) {
				t.Fatalf("Escape(%q) still holds %U", a, r)
			}
		}
	})
}
