package syslog

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/audit/ship"
	"github.com/vigilsec/vigil/audit/ship/shiptest"
)

// mustRecords returns n records of a fresh log.
func mustRecords(t *testing.T, node string, n int) []ship.Record {
	t.Helper()
	l := shiptest.MustLog(t, node)
	l.Append(t, n, "replay")
	tl := ship.NewTailer(ship.TailerConfig{Path: l.Path, NodeID: l.Node, Head: l.ShipLog().Head})
	defer tl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var recs []ship.Record
	for len(recs) < n {
		b, err := tl.Next(ctx, 1000, 0)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, b...)
	}
	return recs
}

// seqKey is the part of a record's line that names its own seq (a
// checkpoint line quotes another entry's seq and hash, never this).
func seqKey(r ship.Record) string { return fmt.Sprintf(`,"seq":%d,"node_id":"`, r.Seq) }

// A receiver that drops the connection with messages unread (acknowledged
// by its TCP stack, never read) loses nothing: the sink writes them again
// on the next connection.
func TestReplayAfterReceiverDropsUnreadMessages(t *testing.T) {
	recs := mustRecords(t, "node-replay", 60)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conns := make(chan *net.TCPConn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns <- c.(*net.TCPConn)
		}
	}()
	sink := NewSink(Config{Address: ln.Addr().String(), Framing: "lf", Render: ship.Render{Format: ship.FormatVault}, Hostname: "node-replay"})
	defer sink.Close()
	ctx := context.Background()
	if err := sink.Write(ctx, recs[:30]); err != nil {
		t.Fatal(err)
	}
	first := <-conns
	// Wait until the receiver's stack has everything, then drop it unread.
	deadline := time.Now().Add(10 * time.Second)
	for !allAcked(sink.conn) {
		if time.Now().After(deadline) {
			t.Fatal("the first 30 messages were never acknowledged")
		}
		time.Sleep(5 * time.Millisecond)
	}
	_ = first.SetLinger(0)
	_ = first.Close()
	// The stream goes on: its writes fail until a connection takes them.
	for i := 0; ; i++ {
		if err := sink.Write(ctx, recs[30:]); err == nil {
			break
		}
		if i > 100 {
			t.Fatal("no write succeeded after the drop")
		}
		time.Sleep(10 * time.Millisecond)
	}
	second := <-conns
	defer second.Close()
	_ = second.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := map[string]bool{}
	sc := bufio.NewScanner(second)
	sc.Buffer(make([]byte, 1<<20), 1<<22)
	for len(got) < len(recs) && sc.Scan() {
		for _, r := range recs {
			if strings.Contains(sc.Text(), seqKey(r)) {
				got[r.Hash] = true
			}
		}
	}
	for _, r := range recs {
		if !got[r.Hash] {
			t.Fatalf("seq %d never reached the second connection (%d of %d did): %v", r.Seq, len(got), len(recs), sc.Err())
		}
	}
}

// A clean Close, after which the receiver has read everything, empties the
// replay buffer: the next connection repeats nothing.
func TestCleanCloseRepeatsNothing(t *testing.T) {
	recs := mustRecords(t, "node-clean", 20)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	lines := make(chan string, 100)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sc := bufio.NewScanner(c)
				sc.Buffer(make([]byte, 1<<20), 1<<22)
				for sc.Scan() {
					lines <- sc.Text()
				}
			}()
		}
	}()
	sink := NewSink(Config{Address: ln.Addr().String(), Framing: "lf", Render: ship.Render{Format: ship.FormatVault}, Hostname: "node-clean"})
	ctx := context.Background()
	if err := sink.Write(ctx, recs[:10]); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	if len(sink.replay) != 0 {
		t.Fatalf("%d messages kept after a clean close", len(sink.replay))
	}
	if err := sink.Write(ctx, recs[10:]); err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	seen := map[string]int{}
	timeout := time.After(10 * time.Second)
	for n := 0; n < len(recs); n++ {
		select {
		case l := <-lines:
			for _, r := range recs {
				if strings.Contains(l, seqKey(r)) {
					seen[r.Hash]++
				}
			}
		case <-timeout:
			t.Fatalf("only %d lines arrived", n)
		}
	}
	for _, r := range recs {
		if seen[r.Hash] != 1 {
			t.Fatalf("seq %d (%s) arrived %d times", r.Seq, r.Hash, seen[r.Hash])
		}
	}
}

// The replay buffer empties as the receiver acknowledges, and is bounded
// without ever failing a write while it does not.
func TestReplayBufferTrimsAndIsBounded(t *testing.T) {
	recs := mustRecords(t, "node-trim", 40)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(io.Discard, c) }()
		}
	}()
	ctx := context.Background()
	sink := NewSink(Config{Address: ln.Addr().String(), Framing: "lf", Render: ship.Render{Format: ship.FormatVault}, ReplayGrace: time.Nanosecond})
	defer sink.Close()
	if err := sink.Write(ctx, recs[:20]); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !allAcked(sink.conn) {
		if time.Now().After(deadline) {
			t.Fatal("never acknowledged")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := sink.Write(ctx, recs[20:21]); err != nil {
		t.Fatal(err)
	}
	if len(sink.replay) != 1 {
		t.Fatalf("%d messages kept, want only the last write's", len(sink.replay))
	}

	small := NewSink(Config{Address: ln.Addr().String(), Framing: "lf", Render: ship.Render{Format: ship.FormatVault}, ReplayGrace: time.Hour, ReplayMaxBytes: 2000})
	defer small.Close()
	for i := range recs {
		if err := small.Write(ctx, recs[i:i+1]); err != nil {
			t.Fatal(err)
		}
		if small.replayBytes > 2000 || small.replayBytes < 0 {
			t.Fatalf("replay buffer holds %d bytes (bound 2000)", small.replayBytes)
		}
	}
	if len(small.replay) == 0 || len(small.replay) == len(recs) {
		t.Fatalf("replay buffer holds %d of %d messages", len(small.replay), len(recs))
	}
}
