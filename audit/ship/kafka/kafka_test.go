package kafka

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilsec/vigil/audit/format/logline"
	"github.com/vigilsec/vigil/audit/ship"
	"github.com/vigilsec/vigil/audit/ship/shiptest"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/storage"
	"github.com/vigilsec/vigil/core/testsvc"
)

var topicSeq atomic.Int64

// newTopic is a unique topic name per test.
func newTopic(tb testing.TB) string {
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-' {
			return r
		}
		return '-'
	}, tb.Name())
	return fmt.Sprintf("vigil-test-%s-%d-%d", strings.ToLower(name), time.Now().UnixNano()%1e9, topicSeq.Add(1))
}

func readLines(brokers []string, topic string) func(context.Context) ([][]byte, error) {
	return func(ctx context.Context) ([][]byte, error) {
		var out [][]byte
		err := ReadTopic(ctx, ReadOptions{Brokers: brokers, Topic: topic}, func(m Message) error {
			l, err := OriginalLine(m)
			if err != nil {
				return err
			}
			out = append(out, l)
			return nil
		})
		return out, err
	}
}

func mustSink(tb testing.TB, cfg Config) *Sink {
	tb.Helper()
	s, err := NewSink(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// TestConformanceKfake runs the sink conformance suite against the
// in-process kfake broker (fast; not a substitute for the real broker).
func TestConformanceKfake(t *testing.T) {
	for _, format := range []string{FormatVault, FormatOCSF, FormatCEF} {
		t.Run(format, func(t *testing.T) {
			shiptest.Run(t, func(tb testing.TB) shiptest.Target {
				fk := shiptest.StartKafka(tb)
				topic := newTopic(tb)
				s := mustSink(tb, Config{Brokers: []string{fk.Addr()}, Topic: topic, Format: format, Compression: "zstd", AutoCreateTopic: true})
				return shiptest.Target{Sink: s, Read: readLines([]string{fk.Addr()}, topic),
					Stop: func(testing.TB) { fk.Stop() }, Start: func(tb testing.TB) { fk.Start(tb) }}
			})
		})
	}
}

// TestConformanceRealKafka runs the suite against the real Apache Kafka
// broker of the test services, outage included.
func TestConformanceRealKafka(t *testing.T) {
	brokers := testsvc.Env(t, "VIGIL_TEST_KAFKA_BROKERS")
	shiptest.Run(t, func(tb testing.TB) shiptest.Target {
		lock := shiptest.Use(tb, "kafka")
		topic := newTopic(tb)
		bs := strings.Split(brokers, ",")
		s := mustSink(tb, Config{Brokers: bs, Topic: topic, Compression: "lz4", AutoCreateTopic: true})
		tg := shiptest.Target{Sink: s, Read: readLines(bs, topic)}
		tg.Stop, tg.Start = lock.Outage(tb, "VIGIL_TEST_KAFKA_CTL")
		return tg
	})
}

// TestKcatReadsWhatVigilProduced cross-checks with an independent client:
// kcat consumes the topic Vigil wrote to the real broker, and finds every
// line with its key and headers.
func TestKcatReadsWhatVigilProduced(t *testing.T) {
	brokers := testsvc.Env(t, "VIGIL_TEST_KAFKA_BROKERS")
	kcat := testsvc.Tool(t, "kcat")
	shiptest.Use(t, "kafka")
	topic := newTopic(t)
	l := shiptest.MustLog(t, "node-kcat")
	l.Append(t, 300, "kcat")
	s := mustSink(t, Config{Brokers: strings.Split(brokers, ","), Topic: topic, Compression: "zstd", AutoCreateTopic: true})
	sh := shiptest.MustShipper(t, "kcat", l, s, ship.StorageCursors{S: storage.NewMemory()})
	shiptest.WaitCaughtUp(t, sh, l.Head(), time.Minute)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// One message per line: key, the node_id/seq/format headers, then the value.
	out, err := exec.CommandContext(ctx, kcat, "-C", "-b", brokers, "-t", topic, "-o", "beginning", "-e", "-q",
		"-f", "%k\t%h\t%s\n").Output()
	if err != nil {
		t.Fatalf("kcat: %v", err)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if uint64(len(lines)) != l.Head() {
		t.Fatalf("kcat read %d messages, the log has %d lines", len(lines), l.Head())
	}
	v := ship.NewVerifier(ctx, ship.VerifyOptions{})
	for i, line := range lines {
		parts := strings.SplitN(line, "\t", 3)
		if len(parts) != 3 {
			t.Fatalf("kcat line %d: %q", i, line)
		}
		m, err := logline.ScanMembers([]byte(parts[2]))
		if err != nil {
			t.Fatalf("kcat line %d value is not a log line: %v", i, err)
		}
		wantHdr := fmt.Sprintf("node_id=%s,seq=%d,format=vault", m.NodeID, m.Seq)
		if parts[0] != "node-kcat" || parts[1] != wantHdr {
			t.Fatalf("kcat line %d: key %q headers %q, want node-kcat / %q", i, parts[0], parts[1], wantHdr)
		}
		if m.Seq != uint64(i+1) {
			t.Fatalf("kcat line %d has seq %d: out of order", i, m.Seq)
		}
		if err := v.Add([]byte(parts[2])); err != nil {
			t.Fatal(err)
		}
	}
	res := v.Close()
	if len(res) != 1 || !res[0].Complete() {
		t.Fatalf("chain as kcat read it: %v", res)
	}
	t.Logf("kcat read %d messages; %s", len(lines), res[0])
}

// A line larger than max_batch_bytes is refused with a clear error (and
// the shipper keeps retrying: nothing is skipped).
func TestOversizedLineIsRefused(t *testing.T) {
	fk := shiptest.StartKafka(t)
	s := mustSink(t, Config{Brokers: []string{fk.Addr()}, Topic: newTopic(t), MaxBatchBytes: 2048, AutoCreateTopic: true})
	line := []byte(`{"time":"2026-01-01T00:00:00Z","type":"request","request":{"path":"` + strings.Repeat("x", 4096) + `"}}`)
	err := s.Write(context.Background(), []ship.Record{{Seq: 1, NodeID: "n", Line: line}})
	if err == nil || !strings.Contains(err.Error(), "max_batch_bytes") {
		t.Fatalf("got %v", err)
	}
}

func TestParseBlock(t *testing.T) {
	blk := func(kv map[string]string) config.Block {
		o := map[string]config.Value{}
		line := 2
		for k, v := range kv {
			o[k] = config.Value{Value: v, Line: line, File: "vigil.hcl"}
			line++
		}
		return config.Block{Type: "kafka", Name: "siem", Options: o, Line: 1, File: "vigil.hcl"}
	}
	cfg, err := ParseBlock(blk(map[string]string{"brokers": "a:9092, b:9092", "topic": "t", "format": "ocsf", "compression": "zstd",
		"sasl_mechanism": "scram-sha-512", "sasl_username": "u", "sasl_password": "p", "tls": "true", "batch_size": "500", "include_raw": "false"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Brokers) != 2 || cfg.Format != FormatOCSF || cfg.SASL == nil || cfg.TLS == nil || cfg.BatchSize != 500 || !cfg.OmitRaw {
		t.Fatalf("%+v", cfg)
	}
	for name, kv := range map[string]map[string]string{
		"unknown key":  {"brokers": "a", "topic": "t", "tpoic": "x"},
		"no topic":     {"brokers": "a"},
		"bad format":   {"brokers": "a", "topic": "t", "format": "xml"},
		"bad codec":    {"brokers": "a", "topic": "t", "compression": "brotli"},
		"bad sasl":     {"brokers": "a", "topic": "t", "sasl_mechanism": "kerberos", "sasl_username": "u"},
		"sasl no user": {"brokers": "a", "topic": "t", "sasl_mechanism": "plain"},
		"bad batch":    {"brokers": "a", "topic": "t", "batch_size": "0"},
	} {
		_, err := ParseBlock(blk(kv))
		if err == nil || !strings.Contains(err.Error(), "vigil.hcl:") {
			t.Errorf("%s: got %v, want an error naming file:line", name, err)
		}
	}
}
