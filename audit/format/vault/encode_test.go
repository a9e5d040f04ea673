package vault

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core"
)

// FuzzEncodeMatchesMarshal: the hand-written encoder produces exactly what
// encoding/json.Marshal produces for the same Entry, for any request data
// and strings (escaping, invalid UTF-8, numbers).
func FuzzEncodeMatchesMarshal(f *testing.F) {
	f.Add(`{"a":"<b>&\u2028","n":1.5e3,"l":["x",{"y":null}],"t":true}`, "path/\x00\xff", "err\n")
	f.Add(`{"k":-0,"e":1E+2}`, "é", "")
	f.Fuzz(func(t *testing.T, data, path, errMsg string) {
		var d map[string]any
		dec := json.NewDecoder(strings.NewReader(data))
		dec.UseNumber()
		if dec.Decode(&d) != nil {
			d = map[string]any{"s": data}
		}
		req := &core.Request{ID: path, Operation: core.OpUpdate, Path: path, Data: d, RemoteAddr: errMsg,
			Principal: &core.Principal{DisplayName: path, Metadata: map[string]string{path: errMsg}, Policies: []string{path}}}
		ev := &core.AuditEvent{Type: "response", Time: time.Unix(1, 0), Request: req,
			Response: &core.Response{Data: d, Warnings: []string{errMsg}, Secret: &core.Secret{LeaseID: path}}}
		if errMsg != "" {
			ev.Err = core.Invalid("%s", errMsg)
		}
		for _, o := range []Options{{Raw: true, Headers: []string{"X"}}, {}} {
			e, err := Build(ev, o)
			if err != nil {
				t.Fatal(err)
			}
			want, werr := json.Marshal(e)
			got, gerr := appendEntry(nil, e)
			if (werr != nil) != (gerr != nil) {
				t.Fatalf("errors differ: %v vs %v", werr, gerr)
			}
			if werr == nil && !bytes.Equal(got, want) {
				t.Fatalf("encoders differ:\n got %s\nwant %s", got, want)
			}
		}
	})
}

func TestEncodeNumbers(t *testing.T) {
	for _, n := range []string{"0", "-0", "1.5", "1e10", "-2.5E-3", "", "01", "1.", ".5", "0x10", "[1]", "1e", "-"} {
		e := &Entry{Time: "t", Type: "request", Request: &Request{Data: map[string]any{"n": json.Number(n)}}}
		want, werr := json.Marshal(e)
		got, gerr := appendEntry(nil, e)
		if (werr != nil) != (gerr != nil) || werr == nil && !bytes.Equal(got, want) {
			t.Errorf("%q: got %s %v, want %s %v", n, got, gerr, want, werr)
		}
	}
}
