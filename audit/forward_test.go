package audit

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core"
)

// A forward record is one vigil.forward line on every device; an outcome
// record carries the status and message the standby answered; a record no
// durable device wrote is an error (the request must not be forwarded).
func TestLogForward(t *testing.T) {
	sink := &fakeSink{}
	b := NewBroker(BrokerConfig{})
	b.Add(testDevice(t, "file", sink, time.Second))
	at := time.Date(2026, 12, 8, 1, 2, 3, 0, time.UTC)
	rec := &core.ForwardRecord{RequestID: "r1", Time: at, Method: "PUT", Path: "secret/data/x",
		RemoteAddr: "10.0.0.9:4000", ToNode: "node1", ToAddress: "10.0.0.1:8201"}
	if err := b.LogForward(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	out := *rec
	out.Status, out.Error = 502, "forwarding to the active node node1 failed"
	if err := b.LogForward(context.Background(), &out); err != nil {
		t.Fatal(err)
	}
	if sink.count() != 2 {
		t.Fatalf("%d lines, want 2", sink.count())
	}
	want := []string{
		`{"type":"vigil.forward","forward":{"request_id":"r1","time":"2026-12-08T01:02:03Z","method":"PUT","path":"secret/data/x","remote_address":"10.0.0.9:4000","to_node":"node1","to_address":"10.0.0.1:8201"}}`,
		`{"type":"vigil.forward","forward":{"request_id":"r1","time":"2026-12-08T01:02:03Z","method":"PUT","path":"secret/data/x","remote_address":"10.0.0.9:4000","to_node":"node1","to_address":"10.0.0.1:8201","status":502,"error":"forwarding to the active node node1 failed"}}`,
	}
	for i, w := range want {
		if got := string(sink.bodies[i]); got != w {
			t.Errorf("line %d:\n got %s\nwant %s", i, got, w)
		}
		var v map[string]any
		if err := json.Unmarshal(sink.bodies[i], &v); err != nil {
			t.Fatal(err)
		}
	}

	bad := NewBroker(BrokerConfig{})
	bad.Add(testDevice(t, "file", &fakeSink{fail: func(int) error { return errors.New("EIO") }}, time.Second))
	if err := bad.LogForward(context.Background(), rec); err == nil {
		t.Fatal("a forward no durable device recorded was reported recorded")
	}
	none := NewBroker(BrokerConfig{})
	none.SetRequired(true)
	if err := none.LogForward(context.Background(), rec); !errors.Is(err, ErrNoDevice) {
		t.Fatalf("required audit, no device: %v", err)
	}
}
