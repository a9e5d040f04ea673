package ocsf

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/vigilsec/vigil/audit/format/logline"
)

var update = flag.Bool("update", false, "rewrite testdata/events.golden")

// chainLog is a real segment written by audit/chain: every Vault entry
// shape, logins, a sys/ call and the chain's own records.
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

// TestGolden renders every line of the chain log; go test -update rewrites
// the golden file after a deliberate change.
func TestGolden(t *testing.T) {
	var buf bytes.Buffer
	for _, line := range mustLines(t) {
		m, _ := logline.ScanMembers(line)
		out, err := Format(line, Options{ProductVersion: "0.1.0"})
		if err != nil {
			t.Fatalf("seq %d: %v", m.Seq, err)
		}
		fmt.Fprintf(&buf, "# seq %d\n%s\n", m.Seq, out)
	}
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
		t.Fatalf("output differs from %s (run go test -update after a deliberate change):\n%s", golden, firstDiff(buf.Bytes(), want))
	}
}

func firstDiff(got, want []byte) string {
	g, w := bytes.Split(got, []byte("\n")), bytes.Split(want, []byte("\n"))
	for i := 0; i < len(g) || i < len(w); i++ {
		var a, b []byte
		if i < len(g) {
			a = g[i]
		}
		if i < len(w) {
			b = w[i]
		}
		if !bytes.Equal(a, b) {
			return fmt.Sprintf("line %d:\n got  %s\n want %s", i+1, a, b)
		}
	}
	return ""
}

// TestMapping checks the classes, the idempotency key and the chain fields
// independently of the golden bytes.
func TestMapping(t *testing.T) {
	classes := map[int]int{}
	for _, line := range mustLines(t) {
		l, err := logline.Parse(line)
		if err != nil {
			t.Fatal(err)
		}
		out, err := Format(line, Options{})
		if err != nil {
			t.Fatal(err)
		}
		var ev map[string]any
		if err := json.Unmarshal(out, &ev); err != nil {
			t.Fatal(err)
		}
		class := int(ev["class_uid"].(float64))
		classes[class]++
		switch {
		case l.IsRecord():
			if class != ClassBase {
				t.Errorf("seq %d (%s): class %d", l.Seq, l.Type, class)
			}
		case l.IsLogin():
			if class != ClassAuthentication || ev["user"] == nil || ev["type_uid"].(float64) != 300201 {
				t.Errorf("seq %d: login mapped to %s", l.Seq, out)
			}
		default:
			if class != ClassAPIActivity {
				t.Errorf("seq %d: class %d", l.Seq, class)
			}
			api := ev["api"].(map[string]any)
			if api["operation"] != l.Request().Operation {
				t.Errorf("seq %d: api.operation %v", l.Seq, api["operation"])
			}
			res := ev["resources"].([]any)[0].(map[string]any)
			if res["name"] != l.Request().Path {
				t.Errorf("seq %d: resource %v", l.Seq, res)
			}
			if int(ev["type_uid"].(float64)) != 600300+int(ev["activity_id"].(float64)) {
				t.Errorf("seq %d: type_uid %v", l.Seq, ev["type_uid"])
			}
		}
		if !l.IsRecord() {
			if _, ok := ev["status_id"]; !ok {
				t.Errorf("seq %d: no status_id", l.Seq)
			}
			if l.Failed() && ev["status_id"].(float64) != 2 {
				t.Errorf("seq %d: failure with status_id %v", l.Seq, ev["status_id"])
			}
		}
		if ev["time"].(float64) != float64(l.At.UnixMilli()) {
			t.Errorf("seq %d: time %v", l.Seq, ev["time"])
		}
		md := ev["metadata"].(map[string]any)
		if md["uid"] != fmt.Sprintf("%s:%d", l.NodeID, l.Seq) || md["sequence"].(float64) != float64(l.Seq) {
			t.Errorf("seq %d: metadata %v", l.Seq, md)
		}
		um := ev["unmapped"].(map[string]any)
		if um["seq"].(float64) != float64(l.Seq) || um["node_id"] != l.NodeID || um["prev_hash"] != l.PrevHash || um["hash"] != l.Hash {
			t.Errorf("seq %d: unmapped %v", l.Seq, um)
		}
		if ev["raw_data"] != string(line) {
			t.Errorf("seq %d: raw_data is not the original line", l.Seq)
		}
		if noRaw, _ := Format(line, Options{OmitRaw: true}); bytes.Contains(noRaw, []byte(`"raw_data"`)) {
			t.Errorf("OmitRaw kept raw_data")
		}
	}
	if classes[ClassAPIActivity] == 0 || classes[ClassAuthentication] == 0 || classes[ClassBase] == 0 {
		t.Fatalf("classes %v", classes)
	}
}

func TestMalformed(t *testing.T) {
	if _, err := Format([]byte(`{"type":"request"}`), Options{}); err == nil {
		t.Fatal("accepted a line without chain members")
	}
}

// BenchmarkFormat renders a realistic entry line (raw_data included).
func BenchmarkFormat(b *testing.B) {
	line := mustLines(b)[3]
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		if _, err := Format(line, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
