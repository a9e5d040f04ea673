package cef

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestNamespace: an entry made in a namespace names it (path and id); an
// entry of the root namespace carries neither key.
func TestNamespace(t *testing.T) {
	root := chainEntry(t)
	in := bytes.Replace(root, []byte(`{"id":"root"}`), []byte(`{"id":"HtLcGY","path":"hospital-a/"}`), 1)
	out, err := Format(in, Options{OmitRaw: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"vigilNamespace=hospital-a/", "vigilNamespaceId=HtLcGY"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("missing %q in %s", want, out)
		}
	}
	out, err = Format(root, Options{OmitRaw: true})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "vigilNamespace") {
		t.Errorf("a root-namespace entry names a namespace: %s", out)
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
