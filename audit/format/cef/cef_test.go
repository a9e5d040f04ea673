package cef

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/audit/format/logline"
)

var update = flag.Bool("update", false, "rewrite testdata/events.golden")

// chainLog is a real segment written by audit/chain: every Vault entry
// shape, logins, a sys/ call with "|", "=" and "\" in its path, and the
// chain's own records.
const chainLog = "../logline/testdata/chain.log"

func mustLines(tb testing.TB) [][]byte {
	tb.Helper()
	f, err := os.Open(chainLog)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		out = append(out, append([]byte(nil), sc.Bytes()...))
	}
	return out
}

func TestGolden(t *testing.T) {
	var buf bytes.Buffer
	for _, line := range mustLines(t) {
		m, _ := logline.ScanMembers(line)
		out, err := Format(line, Options{ProductVersion: "0.1.0", OmitRaw: true})
		if err != nil {
			t.Fatalf("seq %d: %v", m.Seq, err)
		}
		fmt.Fprintf(&buf, "# seq %d\n%s\n", m.Seq, out)
	}
	// One line with the raw line included, to pin its escaping.
	withRaw, err := Format(mustLines(t)[14], Options{ProductVersion: "0.1.0"})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&buf, "# seq 15 with vigilRawLine\n%s\n", withRaw)
	const golden = "testdata/events.golden"
	if *update {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		g, w := strings.Split(buf.String(), "\n"), strings.Split(string(want), "\n")
		for i := range g {
			if i >= len(w) || g[i] != w[i] {
				t.Fatalf("output differs from %s at line %d (go test -update after a deliberate change):\n got  %s", golden, i+1, g[i])
			}
		}
		t.Fatalf("output differs from %s", golden)
	}
}

// TestRoundTrip parses every line back: header fields, chain fields and the
// raw line survive escaping exactly.
func TestRoundTrip(t *testing.T) {
	for _, line := range mustLines(t) {
		l, err := logline.Parse(line)
		if err != nil {
			t.Fatal(err)
		}
		out, err := Format(line, Options{ProductVersion: "1|2"})
		if err != nil {
			t.Fatal(err)
		}
		s := string(out)
		if strings.ContainsAny(s, "\n\r") {
			t.Fatalf("seq %d: line break in CEF line", l.Seq)
		}
		if !strings.HasPrefix(s, `CEF:0|Vigil|Vigil|1\|2|`) {
			t.Fatalf("header %q", s[:40])
		}
		ext := Extension(s)
		if ext["vigilRawLine"] != string(line) {
			t.Fatalf("seq %d: raw line did not round-trip:\n%q\n%q", l.Seq, ext["vigilRawLine"], line)
		}
		if ext["cn1"] != strconv.FormatUint(l.Seq, 10) || ext["vigilPrevHash"] != l.PrevHash || ext["vigilHash"] != l.Hash || ext["dvchost"] != l.NodeID {
			t.Fatalf("seq %d: chain fields %v", l.Seq, ext)
		}
		if ext["externalId"] != fmt.Sprintf("%s:%d", l.NodeID, l.Seq) {
			t.Fatalf("seq %d: externalId %q", l.Seq, ext["externalId"])
		}
		if !l.IsRecord() {
			if ext["request"] != l.Request().Path || ext["act"] != l.Request().Operation {
				t.Fatalf("seq %d: request/act %q %q", l.Seq, ext["request"], ext["act"])
			}
			if l.Failed() != (ext["outcome"] == "failure") {
				t.Fatalf("seq %d: outcome %q", l.Seq, ext["outcome"])
			}
		}
	}
}

func TestEscaping(t *testing.T) {
	if got := string(appendHeader(nil, `a|b\c`+"\n")); got != `a\|b\\c ` {
		t.Fatalf("header %q", got)
	}
	if got := string(appendValue(nil, "a=b\\c\nd\re f")); got != `a\=b\\c\nd\re f` {
		t.Fatalf("value %q", got)
	}
	if Unescape(`a\=b\\c\nd`) != "a=b\\c\nd" {
		t.Fatal("unescape")
	}
}

// BenchmarkFormat renders a realistic entry line (vigilRawLine included).
func BenchmarkFormat(b *testing.B) {
	line := mustLines(b)[3]
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		if _, err := Format(line, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
