package kafka

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	kgo "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"

	"github.com/vigilsec/vigil/audit/chain"
	"github.com/vigilsec/vigil/audit/format/cef"
)

// ReadOptions say where to read a topic back from.
type ReadOptions struct {
	Brokers []string
	Topic   string
	TLS     *tls.Config
	SASL    sasl.Mechanism
	// Timeout bounds each network call (default 10s).
	Timeout time.Duration
}

// Message is one message read back.
type Message struct {
	Partition int
	Offset    int64
	Key       []byte
	Value     []byte
	Headers   map[string]string
}

// ErrNoRawLine is returned by OriginalLine for an ocsf or cef message sent
// without the original line (include_raw = false).
var ErrNoRawLine = errors.New("kafka: message does not carry the original log line (stream has include_raw = false)")

// ReadTopic calls fn with every message of the topic, partition by
// partition (ascending), each in offset order, from the earliest retained
// offset to the partition's end offset when ReadTopic reached it. It
// returns fn's first error, a network error, or ctx.Err().
func ReadTopic(ctx context.Context, o ReadOptions, fn func(Message) error) error {
	return readTopic(ctx, o, func(first, last int64) int64 { return first }, fn)
}

// readTopic is ReadTopic starting each partition at from(first, last).
func readTopic(ctx context.Context, o ReadOptions, from func(first, last int64) int64, fn func(Message) error) error {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	d := &kgo.Dialer{Timeout: o.Timeout, TLS: o.TLS, SASLMechanism: o.SASL, DualStack: true}
	var parts []kgo.Partition
	var lastErr error
	for _, b := range o.Brokers {
		c, err := d.DialContext(ctx, "tcp", b)
		if err != nil {
			lastErr = err
			continue
		}
		parts, err = c.ReadPartitions(o.Topic)
		c.Close()
		if err == nil {
			break
		}
		lastErr = err
	}
	if parts == nil {
		return fmt.Errorf("kafka: partitions of %s: %w", o.Topic, lastErr)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i].ID < parts[j].ID })
	for _, p := range parts {
		leader := net.JoinHostPort(p.Leader.Host, strconv.Itoa(p.Leader.Port))
		if err := readPartition(ctx, d, leader, o, p.ID, from, fn); err != nil {
			return err
		}
	}
	return nil
}

func readPartition(ctx context.Context, d *kgo.Dialer, leader string, o ReadOptions, part int, from func(first, last int64) int64, fn func(Message) error) error {
	c, err := d.DialLeader(ctx, "tcp", leader, o.Topic, part)
	if err != nil {
		return fmt.Errorf("kafka: %s[%d]: %w", o.Topic, part, err)
	}
	defer c.Close()
	first, last, err := c.ReadOffsets()
	if err != nil {
		return fmt.Errorf("kafka: offsets of %s[%d]: %w", o.Topic, part, err)
	}
	off := max(first, from(first, last))
	for off < last {
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, err := c.Seek(off, kgo.SeekAbsolute); err != nil {
			return err
		}
		_ = c.SetReadDeadline(time.Now().Add(o.Timeout))
		batch := c.ReadBatch(1, 64<<20)
		n := 0
		for {
			m, err := batch.ReadMessage()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					_ = batch.Close()
					return fmt.Errorf("kafka: read %s[%d] at %d: %w", o.Topic, part, off, err)
				}
				break
			}
			n++
			if m.Offset < off {
				continue
			}
			off = m.Offset + 1
			msg := Message{Partition: part, Offset: m.Offset, Key: m.Key, Value: m.Value, Headers: map[string]string{}}
			for _, h := range m.Headers {
				msg.Headers[h.Key] = string(h.Value)
			}
			if err := fn(msg); err != nil {
				_ = batch.Close()
				return err
			}
			if off >= last {
				break
			}
		}
		if err := batch.Close(); err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("kafka: read %s[%d] at %d: %w", o.Topic, part, off, err)
		}
		if n == 0 {
			return fmt.Errorf("kafka: read %s[%d]: no progress at offset %d of %d", o.Topic, part, off, last)
		}
	}
	return nil
}

// OriginalLine returns the local log line a message carries, whatever the
// stream's format: the value itself (vault), raw_data (ocsf) or
// vigilRawLine (cef).
func OriginalLine(m Message) ([]byte, error) {
	switch f := m.Headers[HeaderFormat]; f {
	case FormatVault, "":
		return m.Value, nil
	case FormatOCSF:
		var ev struct {
			RawData string `json:"raw_data"`
		}
		if err := json.Unmarshal(m.Value, &ev); err != nil {
			return nil, fmt.Errorf("kafka: offset %d: ocsf message: %w", m.Offset, err)
		}
		if ev.RawData == "" {
			return nil, ErrNoRawLine
		}
		return []byte(ev.RawData), nil
	case FormatCEF:
		raw, ok := cef.Extension(string(m.Value))["vigilRawLine"]
		if !ok {
			return nil, ErrNoRawLine
		}
		return []byte(raw), nil
	default:
		return nil, fmt.Errorf("kafka: offset %d: unknown format header %q", m.Offset, strings.ToValidUTF8(f, "?"))
	}
}

// LatestCheckpointLine returns the newest vigil.checkpoint line of node's
// chain in the topic (nil when there is none). Checkpoints follow every
// checkpoint_every lines, so it reads only the end of each partition: the
// last window messages, then four times more, up to the whole partition.
func LatestCheckpointLine(ctx context.Context, o ReadOptions, node string, window int64) ([]byte, error) {
	if window <= 0 {
		window = 4096
	}
	var best []byte
	var bestSeq uint64
	for {
		whole := true
		err := readTopic(ctx, o, func(first, last int64) int64 {
			if last-first > window {
				whole = false
			}
			return last - window
		}, func(m Message) error {
			if string(m.Key) != node && m.Headers[HeaderNodeID] != node {
				return nil
			}
			line, err := OriginalLine(m)
			if err != nil || !bytes.HasPrefix(line, []byte(`{"type":"vigil.checkpoint"`)) {
				return nil
			}
			cp, err := chain.ParseCheckpointLine(line)
			if err == nil && cp.NodeID == node && (best == nil || cp.Seq > bestSeq) {
				best, bestSeq = line, cp.Seq
			}
			return nil
		})
		if err != nil || best != nil || whole || window >= 1<<24 {
			return best, err
		}
		window *= 4
	}
}

// LatestCheckpoint implements ship.CheckpointReader.
func (s *Sink) LatestCheckpoint(ctx context.Context, node string) ([]byte, error) {
	return LatestCheckpointLine(ctx, ReadOptions{Brokers: s.cfg.Brokers, Topic: s.cfg.Topic, TLS: s.cfg.TLS, SASL: s.cfg.SASL}, node, 0)
}
