package kafka

import (
	"context"
	"strings"
	"testing"
	"time"

	kgo "github.com/segmentio/kafka-go"

	"github.com/vigilsec/vigil/audit/ship"
	"github.com/vigilsec/vigil/audit/ship/shiptest"
	"github.com/vigilsec/vigil/core/testsvc"
)

// createTopic creates a one-partition topic and waits until it accepts
// writes.
func createTopic(tb testing.TB, broker, topic string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := &kgo.Client{Addr: kgo.TCP(broker)}
	resp, err := c.CreateTopics(ctx, &kgo.CreateTopicsRequest{Topics: []kgo.TopicConfig{{Topic: topic, NumPartitions: 1, ReplicationFactor: 1}}})
	if err != nil {
		tb.Fatalf("create topic: %v", err)
	}
	if err := resp.Errors[topic]; err != nil {
		tb.Fatalf("create topic %s: %v", topic, err)
	}
	for ctx.Err() == nil {
		md, err := c.Metadata(ctx, &kgo.MetadataRequest{Topics: []string{topic}})
		if err == nil && len(md.Topics) == 1 && md.Topics[0].Error == nil && len(md.Topics[0].Partitions) == 1 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	tb.Fatalf("topic %s did not appear", topic)
}

// BenchmarkShipKafka measures shipping a backlog to Kafka (goal: 100k
// entries/s). The real broker when VIGIL_TEST_KAFKA_BROKERS is set, and
// the in-process kfake broker for comparison.
//
//	go test ./audit/ship/kafka -run XXX -bench ShipKafka -benchtime 200000x
func BenchmarkShipKafka(b *testing.B) {
	type target struct {
		name   string
		broker func(b *testing.B) string
	}
	targets := []target{
		{"kfake", func(b *testing.B) string { return shiptest.StartKafka(b).Addr() }},
		{"kafka", func(b *testing.B) string {
			brokers := testsvc.Env(b, "VIGIL_TEST_KAFKA_BROKERS")
			shiptest.Use(b, "kafka")
			return strings.Split(brokers, ",")[0]
		}},
	}
	for _, tg := range targets {
		for _, c := range []struct {
			format, codec string
			batch         int
		}{{FormatVault, "lz4", 1000}, {FormatVault, "lz4", 5000}, {FormatVault, "zstd", 5000}, {FormatOCSF, "lz4", 5000}, {FormatCEF, "lz4", 5000}} {
			b.Run(tg.name+"/"+c.format+"/"+c.codec+"/batch="+itoa(c.batch), func(b *testing.B) {
				broker := tg.broker(b)
				shiptest.BenchShip(b, c.batch, func(tb testing.TB) ship.Sink {
					topic := newTopic(tb)
					createTopic(tb, broker, topic)
					// 5000 lines of ~1.3 KB do not fit the default 1 MB
					// request: the sink splits them; allow 8 MB batches.
					return mustSink(tb, Config{Brokers: []string{broker}, Topic: topic, Format: c.format, Compression: c.codec,
						BatchSize: c.batch, MaxBatchBytes: 8 << 20})
				})
			})
		}
	}
}

func itoa(n int) string {
	s := ""
	for n > 0 {
		s = string(rune('0'+n%10)) + s
		n /= 10
	}
	return s
}
