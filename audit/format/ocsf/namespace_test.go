package ocsf

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"
)

// TestNamespace: an entry made in a namespace carries it under unmapped;
// an entry of the root namespace does not.
func TestNamespace(t *testing.T) {
	root := chainEntry(t)
	in := bytes.Replace(root, []byte(`{"id":"root"}`), []byte(`{"id":"HtLcGY","path":"hospital-a/"}`), 1)
	for _, c := range []struct {
		line     []byte
		id, path string
	}{{in, "HtLcGY", "hospital-a/"}, {root, "", ""}} {
		out, err := Format(c.line, Options{OmitRaw: true})
		if err != nil {
			t.Fatal(err)
		}
		var ev struct {
			Unmapped struct {
				Namespace *struct{ ID, Path string } `json:"namespace"`
			} `json:"unmapped"`
		}
		if err := json.Unmarshal(out, &ev); err != nil {
			t.Fatal(err)
		}
		got := ev.Unmapped.Namespace
		switch {
		case c.id == "" && got != nil:
			t.Errorf("root entry names a namespace: %s", out)
		case c.id != "" && (got == nil || got.ID != c.id || got.Path != c.path):
			t.Errorf("namespace %+v, want %s %s: %s", got, c.id, c.path, out)
		}
	}
}

// chainEntry is the first Vault entry of the real chain segment.
func chainEntry(tb testing.TB) []byte {
	tb.Helper()
	b, err := os.ReadFile("../logline/testdata/chain.log")
	if err != nil {
		tb.Fatal(err)
	}
	for _, l := range bytes.Split(b, []byte("\n")) {
		if bytes.Contains(l, []byte(`"namespace":{"id":"root"}`)) {
			return l
		}
	}
	tb.Fatal("no entry in the chain log")
	return nil
}
