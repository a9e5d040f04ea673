package audit

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilsec/vigil/audit/chain"
	"github.com/vigilsec/vigil/audit/format/vault"
	"github.com/vigilsec/vigil/audit/hmac"
	"github.com/vigilsec/vigil/core"
)

// The broker hands vault.Format's output to chain.Writer.AppendTrusted,
// which skips Append's JSON validation. These tests are what makes that
// safe: whatever the event, the output passes chain.ValidateBody.

func formatOptions(t testing.TB) []vault.Options {
	salt, err := hmac.New([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	return []vault.Options{
		{Salt: salt, HMACAccessor: true, Headers: []string{"User-Agent"}},
		{Raw: true, Headers: []string{"User-Agent"}},
		{HMACAccessor: false},
	}
}

func checkValidChainBody(t *testing.T, ev *core.AuditEvent, o vault.Options) {
	t.Helper()
	b, err := vault.Format(ev, o)
	if err != nil {
		return // nothing is written
	}
	if err := chain.ValidateBody(b); err != nil {
		t.Fatalf("vault.Format output rejected by the chain: %v\n%s", err, b)
	}
}

func TestFormatOutputIsValidChainBody(t *testing.T) {
	req, resp := kvReadEvents()
	evs := []*core.AuditEvent{req, resp, event(),
		{Type: "vigil.segment", Request: &core.Request{Path: "seq", Data: map[string]any{"seq": 1, "hash": "x", "vigil.": "y"}}},
		{Type: "response", Request: &core.Request{ID: "\n\r\u2028", Headers: http.Header{"User-Agent": {"a\nb"}}},
			Response: &core.Response{Data: map[string]any{"prev_hash": "\r\n", "node_id": []any{"\n"}},
				Auth: &core.Auth{ClientToken: "t\n", Metadata: map[string]string{"\n": "\r"}}}, Err: errors.New("multi\nline")},
	}
	for _, ev := range evs {
		for _, o := range formatOptions(t) {
			checkValidChainBody(t, ev, o)
		}
	}
}

func FuzzFormatOutputIsValidChainBody(f *testing.F) {
	f.Add(`{"seq":1,"type":"vigil.x","a":["\n",{"hash":null}]}`, "type", "vigil.event", "x\r\n")
	f.Add(`{}`, "", "", "")
	f.Fuzz(func(t *testing.T, data, path, tok, errMsg string) {
		var d map[string]any
		dec := json.NewDecoder(strings.NewReader(data))
		dec.UseNumber()
		if dec.Decode(&d) != nil {
			d = map[string]any{data: data}
		}
		req := &core.Request{ID: path, Operation: core.Operation(path), Path: path, Data: d, ClientToken: tok, RemoteAddr: errMsg,
			Headers: http.Header{"User-Agent": {errMsg}},
			Mount:   &core.MountInfo{Path: path, Type: tok, Config: core.MountConfig{AuditNonHMACRequestKeys: []string{path}}},
			Principal: &core.Principal{ClientToken: tok, Accessor: path, DisplayName: errMsg, Policies: []string{path},
				Metadata: map[string]string{path: tok}, IssueTime: time.Unix(int64(len(data)), 0)},
			Decision: &core.Decision{Allowed: len(tok)%2 == 0, DenyReasons: []string{errMsg}, Flags: map[string]string{tok: path}}}
		ev := &core.AuditEvent{Type: path, Time: time.Unix(0, int64(len(path))), Request: req,
			Response: &core.Response{Data: d, Warnings: []string{errMsg}, Secret: &core.Secret{LeaseID: tok}}}
		if errMsg != "" {
			ev.Err = core.Invalid("%s", errMsg)
		}
		for _, typ := range []string{"request", "response"} {
			ev.Type = typ
			for _, o := range formatOptions(t) {
				checkValidChainBody(t, ev, o)
			}
		}
	})
}

// A file device bounds its writes by itself (no context deadline per entry):
// a hung fsync still fails the entry within the device's write_timeout,
// and the log still holds only what was acknowledged (fail closed).
func TestFileDeviceHungFsyncBounded(t *testing.T) {
	release := make(chan struct{})
	var stuck atomic.Bool
	dc := &DeviceConfig{Name: "file", Type: TypeFile, Path: filepath.Join(t.TempDir(), "audit.log"),
		WriteTimeout: 100 * time.Millisecond, CheckpointEvery: -1, CheckpointInterval: -1}
	sink, err := OpenFileSink(dc, FileEnv{NodeID: "n1", Faults: &chain.Faults{BeforeSync: func() error {
		if stuck.Load() {
			<-release
		}
		return nil
	}}})
	if err != nil {
		t.Fatal(err)
	}
	if !selfTimed(sink, dc.WriteTimeout) {
		t.Fatal("file sink opened by OpenFileSink should bound its own writes")
	}
	b := NewBroker(BrokerConfig{})
	b.Add(NewDevice(dc, "config", formatOptions(t)[0], sink, nil))
	defer b.Close()
	defer close(release)
	req, _ := kvReadEvents()
	if err := b.LogRequest(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	stuck.Store(true)
	start := time.Now()
	err = b.LogRequest(context.Background(), req)
	if err == nil || !strings.Contains(err.Error(), "in time") {
		t.Fatalf("hung fsync: got %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("hung fsync answered after %v, write_timeout is %v", d, dc.WriteTimeout)
	}
	// A file sink whose writer times out later than the device does is
	// bounded by a context deadline instead.
	if selfTimed(&FileSink{W: sink.W}, dc.WriteTimeout) || selfTimed(&FileSink{W: sink.W, timeout: time.Hour}, time.Second) {
		t.Fatal("selfTimed for a sink without a known, short enough timeout")
	}
}
