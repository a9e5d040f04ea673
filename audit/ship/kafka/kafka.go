// Package kafka ships Vigil's audit log to Apache Kafka with
// github.com/segmentio/kafka-go: an audit_stream "kafka" sink.
//
//	audit_stream "kafka" "siem" {
//	  brokers     = ["kafka-1:9092", "kafka-2:9092"]
//	  topic       = "vigil-audit"
//	  format      = "ocsf"        # vault (default) | ocsf | cef
//	  events      = "per_request" # per_entry (default) | per_request: one ocsf/cef event per request
//	  compression = "zstd"        # lz4 (default) | zstd | gzip | snappy | none
//	  batch_size  = 1000
//	  linger      = "20ms"
//	  tls         = true          # tls_ca_file, tls_cert_file, tls_key_file, tls_server_name, tls_skip_verify
//	  sasl_mechanism = "scram-sha-512"   # plain | scram-sha-256 | scram-sha-512
//	  sasl_username  = "vigil"
//	  sasl_password  = "..."
//	}
//
// Every message is one line of the local log: its value is the line
// itself (format "vault": byte for byte the local line), an OCSF event or
// a CEF line; its key is the node id, so one node's chain lands on one
// partition in order (the partitioner is murmur2, the Java client's
// default, so keyed records go where any Kafka client would put them); its
// headers are node_id, seq and format. The writer requires acknowledgement
// from all in-sync replicas (RequiredAcks = all) and sends each batch as
// one produce request, never letting a later batch overtake a failed one;
// failed batches are retried by the shipper, so a consumer sees records in
// seq order per node with possible repeats, which it drops by (node_id,
// seq). ReadTopic and OriginalLine read a topic back for verification
// (`vigil audit verify --kafka`).
package kafka

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	kgo "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/vigilsec/vigil/audit/format/cef"
	"github.com/vigilsec/vigil/audit/format/ocsf"
	"github.com/vigilsec/vigil/audit/ship"
	"github.com/vigilsec/vigil/core/config"
)

// Formats.
const (
	FormatVault = "vault"
	FormatOCSF  = "ocsf"
	FormatCEF   = "cef"
)

// Message headers.
const (
	HeaderNodeID      = "node_id"
	HeaderSeq         = "seq"
	HeaderFormat      = "format"
	HeaderFormatError = "format_error" // set when the line could not be rendered and was sent as vault
)

// Config configures a Sink.
type Config struct {
	Brokers []string
	Topic   string
	Format  string // vault (default), ocsf, cef
	// OmitRaw drops the original line from ocsf/cef messages (raw_data,
	// vigilRawLine): smaller messages, but the chain can no longer be
	// verified from the topic.
	OmitRaw     bool
	Compression string // lz4 (default), zstd, gzip, snappy, none
	// BatchSize and MaxBatchBytes bound one produce request (defaults
	// 1000 records and 1 MB, Kafka's default message.max.bytes). A single
	// line larger than MaxBatchBytes cannot be sent: raise both the
	// topic's max.message.bytes and max_batch_bytes.
	BatchSize     int
	MaxBatchBytes int64
	// AutoCreateTopic lets the broker create a missing topic (default
	// true, as Kafka's Java producer; the broker must allow it).
	AutoCreateTopic bool
	ClientID        string
	TLS             *tls.Config
	SASL            sasl.Mechanism
	// ProductVersion names the Vigil version in ocsf/cef messages.
	ProductVersion string
	// PerRequest sends one ocsf/cef event per request (events =
	// "per_request"; see ship.Render.PerRequest).
	PerRequest bool
	// Regulated rates denials on regulated mounts High (ship.Env).
	Regulated func(mount string) bool
	// WriteTimeout bounds one produce request (default 10s).
	WriteTimeout time.Duration
}

// knownKeys are the options the kafka stream type accepts besides ship.CommonKeys().
var knownKeys = []string{"brokers", "topic", "format", "events", "include_raw", "compression", "max_batch_bytes", "auto_create_topic", "client_id",
	"tls", "tls_ca_file", "tls_cert_file", "tls_key_file", "tls_server_name", "tls_skip_verify",
	"sasl_mechanism", "sasl_username", "sasl_password"}

// New is the ship.Factory for audit_stream "kafka" blocks.
func New(b config.Block, env ship.Env) (ship.Sink, error) {
	cfg, err := ParseBlock(b)
	if err != nil {
		return nil, err
	}
	cfg.ProductVersion, cfg.Regulated = env.Version, env.Regulated
	if cfg.ClientID == "" {
		cfg.ClientID = "vigil-" + env.NodeID
	}
	return NewSink(cfg)
}

// ParseBlock reads an audit_stream "kafka" block. Errors name the key and
// its file:line.
func ParseBlock(b config.Block) (Config, error) {
	if err := b.Unknown(append(ship.CommonKeys(), knownKeys...)...); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	cfg := Config{Brokers: ship.ListOption(b, "brokers"), Topic: ship.StringOption(b, "topic", ""),
		Format: ship.StringOption(b, "format", FormatVault), Compression: ship.StringOption(b, "compression", "lz4"),
		ClientID: ship.StringOption(b, "client_id", "")}
	if len(cfg.Brokers) == 0 {
		return cfg, ship.Errorf(b, "brokers", "at least one broker address is required")
	}
	if cfg.Topic == "" {
		return cfg, ship.Errorf(b, "topic", "a topic is required")
	}
	switch cfg.Format {
	case FormatVault, FormatOCSF, FormatCEF:
	default:
		return cfg, ship.Errorf(b, "format", "unknown format %q (vault, ocsf or cef)", cfg.Format)
	}
	switch ev := ship.StringOption(b, "events", "per_entry"); ev {
	case "per_entry":
	case "per_request":
		if cfg.Format == FormatVault {
			return cfg, ship.Errorf(b, "events", "per_request needs format ocsf or cef: the vault format sends every line so the chain can be verified")
		}
		cfg.PerRequest = true
	default:
		return cfg, ship.Errorf(b, "events", "unknown value %q (per_entry or per_request)", ev)
	}
	if _, err := compression(cfg.Compression); err != nil {
		return cfg, ship.Errorf(b, "compression", "%v", err)
	}
	var err error
	incRaw, err := ship.BoolOption(b, "include_raw", true)
	if err != nil {
		return cfg, err
	}
	cfg.OmitRaw = !incRaw
	if cfg.BatchSize, err = ship.IntOption(b, "batch_size", 1000, 1, 1_000_000); err != nil {
		return cfg, err
	}
	mbb, err := ship.IntOption(b, "max_batch_bytes", 1_000_000, 1024, 1<<30)
	if err != nil {
		return cfg, err
	}
	cfg.MaxBatchBytes = int64(mbb)
	if cfg.AutoCreateTopic, err = ship.BoolOption(b, "auto_create_topic", true); err != nil {
		return cfg, err
	}
	if cfg.TLS, err = tlsConfig(b); err != nil {
		return cfg, err
	}
	if cfg.SASL, err = saslMechanism(b); err != nil {
		return cfg, err
	}
	return cfg, nil
}

func tlsConfig(b config.Block) (*tls.Config, error) { return ship.TLSConfig(b) }

func saslMechanism(b config.Block) (sasl.Mechanism, error) {
	mech := strings.ToLower(ship.StringOption(b, "sasl_mechanism", ""))
	user, pass := ship.StringOption(b, "sasl_username", ""), ship.StringOption(b, "sasl_password", "")
	if mech == "" {
		if user != "" || pass != "" {
			return nil, ship.Errorf(b, "sasl_mechanism", "sasl_username is set but no sasl_mechanism (plain, scram-sha-256 or scram-sha-512)")
		}
		return nil, nil
	}
	if user == "" {
		return nil, ship.Errorf(b, "sasl_username", "required with sasl_mechanism %q", mech)
	}
	switch mech {
	case "plain":
		return plain.Mechanism{Username: user, Password: pass}, nil
	case "scram-sha-256", "scram-sha-512":
		algo := scram.SHA256
		if mech == "scram-sha-512" {
			algo = scram.SHA512
		}
		m, err := scram.Mechanism(algo, user, pass)
		if err != nil {
			return nil, ship.Errorf(b, "sasl_mechanism", "%v", err)
		}
		return m, nil
	}
	return nil, ship.Errorf(b, "sasl_mechanism", "unknown mechanism %q (plain, scram-sha-256 or scram-sha-512)", mech)
}

func compression(name string) (kgo.Compression, error) {
	switch strings.ToLower(name) {
	case "", "lz4":
		return kgo.Lz4, nil
	case "zstd":
		return kgo.Zstd, nil
	case "gzip":
		return kgo.Gzip, nil
	case "snappy":
		return kgo.Snappy, nil
	case "none":
		return 0, nil
	}
	return 0, fmt.Errorf("unknown compression %q (lz4, zstd, gzip, snappy or none)", name)
}

// Sink writes records to a Kafka topic. It implements ship.Sink,
// ship.Targeter and ship.Describer.
type Sink struct {
	cfg   Config
	codec kgo.Compression

	mu sync.Mutex
	w  *kgo.Writer
	tr *kgo.Transport
}

var (
	_ ship.Sink      = (*Sink)(nil)
	_ ship.Targeter  = (*Sink)(nil)
	_ ship.Describer = (*Sink)(nil)
)

// NewSink validates cfg; it does not connect.
func NewSink(cfg Config) (*Sink, error) {
	if len(cfg.Brokers) == 0 || cfg.Topic == "" {
		return nil, errors.New("kafka sink: brokers and topic are required")
	}
	if cfg.Format == "" {
		cfg.Format = FormatVault
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 1000
	}
	if cfg.MaxBatchBytes <= 0 {
		cfg.MaxBatchBytes = 1_000_000
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	codec, err := compression(cfg.Compression)
	if err != nil {
		return nil, err
	}
	return &Sink{cfg: cfg, codec: codec}, nil
}

// Target names the destination for the stream's cursor: the topic. Adding
// or replacing brokers of the same cluster keeps the cursor; to ship to
// another cluster from the start, give the stream a new name.
func (s *Sink) Target() string { return "kafka:" + s.cfg.Topic }

// Describe implements ship.Describer.
func (s *Sink) Describe() map[string]any {
	return map[string]any{"brokers": strings.Join(s.cfg.Brokers, ","), "topic": s.cfg.Topic, "format": s.cfg.Format,
		"compression": s.cfg.Compression, "required_acks": "all"}
}

func (s *Sink) writer() *kgo.Writer {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w == nil {
		s.tr = &kgo.Transport{TLS: s.cfg.TLS, SASL: s.cfg.SASL, ClientID: s.cfg.ClientID, DialTimeout: 5 * time.Second,
			IdleTimeout: 30 * time.Second, MetadataTTL: 10 * time.Second}
		s.w = &kgo.Writer{
			Addr: kgo.TCP(s.cfg.Brokers...), Topic: s.cfg.Topic, Balancer: &kgo.Murmur2Balancer{},
			RequiredAcks: kgo.RequireAll, Compression: s.codec,
			// Each WriteMessages call below is exactly one batch: full
			// batches flush at once, short ones after 1ms. No internal
			// retries: the shipper retries whole batches, in order.
			BatchSize: s.cfg.BatchSize, BatchBytes: s.cfg.MaxBatchBytes, BatchTimeout: time.Millisecond,
			MaxAttempts: 1, WriteTimeout: s.cfg.WriteTimeout, ReadTimeout: s.cfg.WriteTimeout,
			AllowAutoTopicCreation: s.cfg.AutoCreateTopic, Transport: s.tr,
		}
	}
	return s.w
}

// Write implements ship.Sink: records are rendered in the stream's format
// and produced in chunks of at most BatchSize records and MaxBatchBytes,
// one produce request each, in order, stopping at the first failure.
func (s *Sink) Write(ctx context.Context, recs []ship.Record) error {
	w := s.writer()
	msgs := make([]kgo.Message, 0, min(len(recs), s.cfg.BatchSize))
	var bytes int64
	flush := func() error {
		if len(msgs) == 0 {
			return nil
		}
		err := w.WriteMessages(ctx, msgs...)
		msgs, bytes = msgs[:0], 0
		if err != nil {
			return fmt.Errorf("kafka %s: %w", s.cfg.Topic, summarize(err))
		}
		return nil
	}
	rendered := make([]kgo.Message, len(recs))
	ship.Parallel(len(recs), func(i int) { rendered[i] = s.message(recs[i]) })
	var skip []bool
	if s.cfg.PerRequest {
		skip = ship.Answered(recs)
	}
	for i, m := range rendered {
		r := recs[i]
		if skip != nil && skip[i] {
			continue
		}
		size := messageSize(m)
		if size > s.cfg.MaxBatchBytes {
			return fmt.Errorf("kafka %s: seq %d is %d bytes, more than max_batch_bytes %d: raise max_batch_bytes and the topic's max.message.bytes",
				s.cfg.Topic, r.Seq, size, s.cfg.MaxBatchBytes)
		}
		if len(msgs) == s.cfg.BatchSize || bytes+size > s.cfg.MaxBatchBytes {
			if err := flush(); err != nil {
				return err
			}
		}
		msgs = append(msgs, m)
		bytes += size
	}
	return flush()
}

// summarize shortens kafka-go's per-message WriteErrors (one entry per
// message of a failed batch) to a count and the first error.
func summarize(err error) error {
	var we kgo.WriteErrors
	if !errors.As(err, &we) {
		return err
	}
	failed := 0
	var first error
	for _, e := range we {
		if e != nil {
			failed++
			if first == nil {
				first = e
			}
		}
	}
	if first == nil {
		return err
	}
	return fmt.Errorf("%d of %d messages not written: %w", failed, len(we), first)
}

// messageSize is an upper bound of what kafka-go counts against BatchBytes.
func messageSize(m kgo.Message) int64 {
	n := int64(len(m.Key) + len(m.Value) + 64)
	for _, h := range m.Headers {
		n += int64(len(h.Key) + len(h.Value) + 8)
	}
	return n
}

func (s *Sink) message(r ship.Record) kgo.Message {
	value, format := r.Line, s.cfg.Format
	var ferr error
	switch s.cfg.Format {
	case FormatOCSF:
		value, ferr = ocsf.Format(r.Line, ocsf.Options{ProductVersion: s.cfg.ProductVersion, OmitRaw: s.cfg.OmitRaw, Regulated: s.cfg.Regulated})
	case FormatCEF:
		value, ferr = cef.Format(r.Line, cef.Options{ProductVersion: s.cfg.ProductVersion, OmitRaw: s.cfg.OmitRaw, Regulated: s.cfg.Regulated})
	}
	hdr := []kgo.Header{
		{Key: HeaderNodeID, Value: []byte(r.NodeID)},
		{Key: HeaderSeq, Value: strconv.AppendUint(nil, r.Seq, 10)},
		{Key: HeaderFormat, Value: []byte(format)},
	}
	if ferr != nil {
		// Never drop a line: send it as it is, and say why.
		value = r.Line
		hdr[2].Value = []byte(FormatVault)
		hdr = append(hdr, kgo.Header{Key: HeaderFormatError, Value: []byte(ferr.Error())})
	}
	return kgo.Message{Key: []byte(r.NodeID), Value: value, Headers: hdr}
}

// Close implements ship.Sink.
func (s *Sink) Close() error {
	s.mu.Lock()
	w, tr := s.w, s.tr
	s.w, s.tr = nil, nil
	s.mu.Unlock()
	if w == nil {
		return nil
	}
	err := w.Close()
	tr.CloseIdleConnections()
	return err
}
