package reports

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// A path holding a right-to-left override cannot pass for another in any
// rendering: HTML, CSV and PDF show it escaped, JSON keeps the value with
// the character as a \u escape.
func TestRenderingsEscapeBidiControls(t *testing.T) {
	spoof := "phi/ward7/\u202etxt.exe"
	r := &Report{Title: "HIPAA " + spoof, Charts: []Chart{{ID: "heat", Title: "t", Labels: []string{spoof},
		Series: []Series{{Name: spoof, Values: []int64{3}}}}}}
	for _, f := range []string{FormatHTML, FormatCSV, FormatPDF, FormatJSON} {
		var b bytes.Buffer
		if err := Render(&b, r, f); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if strings.ContainsRune(b.String(), '\u202e') {
			t.Errorf("%s rendering holds a raw U+202E", f)
		}
		if f == FormatHTML || f == FormatCSV {
			if !strings.Contains(b.String(), `phi/ward7/\u202etxt.exe`) {
				t.Errorf("%s rendering does not show the escaped path", f)
			}
		}
		if f == FormatJSON {
			var back Report
			if err := json.Unmarshal(b.Bytes(), &back); err != nil || back.Title != r.Title {
				t.Errorf("JSON changed the value: %q %v", back.Title, err)
			}
		}
	}
	if r.Title != "HIPAA "+spoof {
		t.Fatal("rendering changed the report itself")
	}
}
