package itest

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilsec/vigil/audit/auditsvc"
	"github.com/vigilsec/vigil/audit/chain"
	"github.com/vigilsec/vigil/audit/diskwatch"
	"github.com/vigilsec/vigil/audit/ship/shiptest"
	"github.com/vigilsec/vigil/core/config"
)

// TestStreamHoldsSegmentsUntilShipped: while the stream's broker is down
// and the disk is at critical pressure, retention wants to delete rotated
// segments the stream has not shipped. It must not: sys/health, the audit
// status, the stream status and the metrics name the stream holding the
// space. Once the broker is back and the stream caught up, retention
// deletes them, and the topic holds the whole chain.
func TestStreamHoldsSegmentsUntilShipped(t *testing.T) {
	fk := shiptest.StartKafka(t)
	broker := fk.Addr()
	fk.Stop() // the sink is down from the start

	var critical atomic.Bool
	statfs := func(string) (diskwatch.Usage, error) {
		if critical.Load() {
			return diskwatch.Usage{Total: 100 << 30, Free: 5 << 30, Avail: 5 << 30}, nil // 95% used
		}
		return diskwatch.Usage{Total: 100 << 30, Free: 50 << 30, Avail: 50 << 30}, nil
	}
	never := make(chan time.Time) // maintenance never runs on its own: the test runs the checks
	ao := auditsvc.Options{Stdout: io.Discard, Statfs: statfs, Ticker: func() (<-chan time.Time, func()) { return never, func() {} }}
	dir := t.TempDir()
	s := mustStreamServer(t, dir, map[string]string{"max_backups": "1", "reserve_bytes": "0"}, []config.Block{
		streamBlock("kafka", "siem", map[string]string{"brokers": broker, "topic": "held", "max_backoff": "200ms"}),
	}, ao, shipOptions())
	w := s.Audit().Watcher()
	// Entering critical pressure rotates the active segment; leaving and
	// entering again rotates once more.
	rotate := func() {
		critical.Store(false)
		w.Check()
		critical.Store(true)
		w.Check()
	}
	rotated := func() int {
		infos, err := chain.ListSegments(auditLogPath(dir))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, si := range infos {
			if !si.Active {
				n++
			}
		}
		return n
	}
	// Segments rotated before the test's own rotations (a key-less one, for
	// instance, when a request was rejected while sealed) count as well.
	base := rotated()
	for i := 0; i < 3; i++ {
		if _, err := s.Client.Logical().Write("secret/data/held", map[string]any{"data": map[string]any{"i": i}}); err != nil {
			t.Fatal(err)
		}
		rotate()
	}
	if n := rotated(); n != base+3 {
		t.Fatalf("%d rotated segments kept, want all %d: retention deleted unshipped segments", n, base+3)
	}
	ws, _ := w.State("file")
	if ws.Holder != "kafka/siem" || ws.Level < diskwatch.LevelCritical {
		t.Fatalf("disk watcher state %+v: the stream should be named as holding the segment", ws)
	}
	// (The status word itself follows the level cached by the audit
	// subsystem's own maintenance tick, which this test does not run.)
	if _, detail := s.Audit().Status(); !strings.Contains(detail["reason"].(string), "shipper kafka/siem holds") {
		t.Fatalf("audit status reason %v", detail["reason"])
	}
	st := s.streamStatus(t, "siem")
	var held heldInfo
	for _, x := range s.Ship().Statuses() {
		if x.Name == "siem" {
			held = heldInfo{x.HoldingDisk, x.HeldSegments}
		}
	}
	if held.disk != "file" || held.segments != base+3 || st.Up {
		t.Fatalf("stream status: holding %q, %d held segments, up %v", held.disk, held.segments, st.Up)
	}
	metrics := httpGet(t, s.URL+"/v1/sys/metrics?format=prometheus", s.RootToken)
	if !strings.Contains(metrics, `vigil_audit_stream_holding_disk{device="file",stream="siem",type="kafka"} 1`) ||
		!strings.Contains(metrics, fmt.Sprintf(`vigil_audit_stream_held_segments{stream="siem",type="kafka"} %d`, base+3)) {
		t.Fatalf("metrics:\n%s", grepLines(metrics, "vigil_audit_stream_h"))
	}
	var health struct {
		Audit struct {
			Reason  string                    `json:"reason"`
			Streams map[string]map[string]any `json:"streams"`
		} `json:"audit"`
	}
	if err := json.Unmarshal([]byte(httpGet(t, s.URL+"/v1/sys/health", "")), &health); err != nil {
		t.Fatal(err)
	}
	if health.Audit.Streams["siem"]["holding_disk"] != "file" || !strings.Contains(health.Audit.Reason, "kafka/siem") {
		t.Fatalf("sys/health audit: %+v", health.Audit)
	}

	fk.Start(t)
	head := s.head(t)
	s.waitShipped(t, "siem", head, time.Minute)
	w.Check() // still critical: retention runs again
	if n := rotated(); n != 1 {
		t.Fatalf("%d rotated segments after the stream passed them, want 1 (max_backups)", n)
	}
	if ws, _ := w.State("file"); ws.Holder != "" || ws.Pruned != uint64(base+2) {
		t.Fatalf("after catching up: %+v", ws)
	}
	verifyLines(t, readTopic(t, fk.Addr(), "held"), s.publicKey(t), head)
}

type heldInfo struct {
	disk     string
	segments int
}
