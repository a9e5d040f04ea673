package transit

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/core"
)

func TestItemInt(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want int
		err  string
	}{
		{nil, 0, ""},
		{json.Number("3"), 3, ""},
		{float64(4), 4, ""},
		{5, 5, ""},
		{"6", 6, ""},
		{"", 0, ""},
		{json.Number("1.5"), 0, "expected an integer"},
		{float64(1.5), 0, "expected an integer"},
		{"seven", 0, "expected an integer"},
		{true, 0, "expected type 'int'"},
	} {
		got, err := itemInt(map[string]any{"key_version": tc.v}, "key_version")
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("itemInt(%#v) = %d, %v; want %d", tc.v, got, err, tc.want)
		case tc.err != "" && (core.CodeOf(err) != core.CodeInvalid || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("itemInt(%#v) error %v, want one containing %q", tc.v, err, tc.err)
		}
	}
}

func TestItemString(t *testing.T) {
	it := map[string]any{"s": "x", "null": nil, "n": json.Number("1")}
	if s, ok, err := itemString(it, "s"); s != "x" || !ok || err != nil {
		t.Errorf("string member: %q %v %v", s, ok, err)
	}
	for _, k := range []string{"null", "absent"} {
		if s, ok, err := itemString(it, k); s != "" || ok || err != nil {
			t.Errorf("%s member: %q %v %v", k, s, ok, err)
		}
	}
	if _, _, err := itemString(it, "n"); core.CodeOf(err) != core.CodeInvalid {
		t.Errorf("number member: %v, want an invalid error", err)
	}
}
