// Package syslog ships Vigil's audit log to a syslog receiver (a SIEM's
// collector: Microsoft Sentinel's AMA/rsyslog, ArcSight SmartConnector,
// QRadar, rsyslog, syslog-ng) as RFC 5424 messages: an audit_stream
// "syslog" sink.
//
//	audit_stream "syslog" "siem" {
//	  address     = "collector.example:6514"
//	  transport   = "tls"          # tls (default; RFC 5425) | tcp (RFC 6587)
//	  framing     = "octet-counting"  # octet-counting (default) | lf
//	  format      = "cef"          # cef (default) | ocsf | vault
//	  events      = "per_request"  # per_entry (default) | per_request
//	  include_raw = false          # leave the original line out of cef/ocsf
//	  facility    = "local0"       # default local0
//	  app_name    = "vigil"
//	  tls_ca_file = "/etc/vigil/siem-ca.pem"  # tls_cert_file, tls_key_file, tls_server_name, tls_skip_verify
//	}
//
// Each audit line is one message:
//
//	<PRI>1 TIMESTAMP HOSTNAME vigil - MSGID [vigil@32473 node_id="n1" seq="42"] MSG
//
// where PRI is the facility and the severity the formats rate (break-glass
// and denials on regulated mounts err, denials and root-token use
// warning, failures notice, the rest info), TIMESTAMP the entry's time
// with microseconds, HOSTNAME the node id, MSGID the entry type (request,
// response, or the chain record type), the structured data names the line
// (32473 is the enterprise number RFC 5612 reserves for documentation:
// consumers key on the SD-ID "vigil@32473"), and MSG the rendered event
// (a CEF line, an OCSF JSON object or the local line itself), UTF-8
// without a BOM. Over TLS each message is framed as RFC 5425 requires:
// its length in octets, a space, the message. Over plain TCP the same
// octet counting is the default (RFC 6587 3.4.1); framing = "lf" ends each
// message with a newline instead (a newline in a message is then replaced
// by a space; CEF and OCSF have none).
//
// Syslog has no acknowledgement: a batch counts as delivered once every
// byte of it was written to the connection (TLS: and flushed). A
// connection that fails is closed and the batch sent again on a new one,
// so a receiver can see a message twice; it dedupes on (node_id, seq).
package syslog

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vigilsec/vigil/audit/format/logline"
	"github.com/vigilsec/vigil/audit/ship"
	"github.com/vigilsec/vigil/core/config"
)

// SDID is the structured-data id of every message.
const SDID = "vigil@32473"

// Config configures a Sink.
type Config struct {
	Address   string
	TLS       *tls.Config // nil: plain TCP
	Framing   string      // "octet-counting" (default) or "lf"
	Render    ship.Render
	Facility  int // default 16 (local0)
	AppName   string
	Hostname  string        // default: the node id
	DialWait  time.Duration // default 5s
	WriteWait time.Duration // default 10s
	// ReplayGrace is how long after its writing a message stays in the
	// replay buffer at least (default 10s); see Sink.
	ReplayGrace time.Duration
	// ReplayMaxBytes bounds the replay buffer (default 64 MiB, far more
	// than a connection holds unacknowledged): past it the oldest messages
	// leave it, so a stream never stalls on it.
	ReplayMaxBytes int
}

var facilities = map[string]int{"kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7,
	"uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11, "local0": 16, "local1": 17, "local2": 18, "local3": 19, "local4": 20,
	"local5": 21, "local6": 22, "local7": 23}

// knownKeys are the options the syslog stream type accepts besides
// ship.CommonKeys().
var knownKeys = []string{"address", "transport", "framing", "format", "events", "include_raw", "facility", "app_name", "hostname",
	"dial_timeout", "tls", "tls_ca_file", "tls_cert_file", "tls_key_file", "tls_server_name", "tls_skip_verify"}

// New is the ship.Factory for audit_stream "syslog" blocks.
func New(b config.Block, env ship.Env) (ship.Sink, error) {
	cfg, err := ParseBlock(b)
	if err != nil {
		return nil, err
	}
	cfg.Render.ProductVersion, cfg.Render.Regulated = env.Version, env.Regulated
	if cfg.Hostname == "" {
		cfg.Hostname = env.NodeID
	}
	return NewSink(cfg), nil
}

// ParseBlock reads an audit_stream "syslog" block; errors name the key
// and its file:line.
func ParseBlock(b config.Block) (Config, error) {
	if err := b.Unknown(append(ship.CommonKeys(), knownKeys...)...); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	cfg := Config{Address: ship.StringOption(b, "address", ""), Framing: ship.StringOption(b, "framing", "octet-counting"),
		AppName: ship.StringOption(b, "app_name", "vigil"), Hostname: ship.StringOption(b, "hostname", "")}
	if _, _, err := net.SplitHostPort(cfg.Address); err != nil {
		return cfg, ship.Errorf(b, "address", "want host:port, got %q", cfg.Address)
	}
	switch cfg.Framing {
	case "octet-counting", "lf":
	default:
		return cfg, ship.Errorf(b, "framing", "unknown framing %q (octet-counting or lf)", cfg.Framing)
	}
	cfg.Render.Format = ship.StringOption(b, "format", ship.FormatCEF)
	switch cfg.Render.Format {
	case ship.FormatCEF, ship.FormatOCSF, ship.FormatVault:
	default:
		return cfg, ship.Errorf(b, "format", "unknown format %q (cef, ocsf or vault)", cfg.Render.Format)
	}
	switch ev := ship.StringOption(b, "events", "per_entry"); ev {
	case "per_entry":
	case "per_request":
		if cfg.Render.Format == ship.FormatVault {
			return cfg, ship.Errorf(b, "events", "per_request needs format cef or ocsf: the vault format sends every line so the chain can be verified")
		}
		cfg.Render.PerRequest = true
	default:
		return cfg, ship.Errorf(b, "events", "unknown value %q (per_entry or per_request)", ev)
	}
	raw, err := ship.BoolOption(b, "include_raw", true)
	if err != nil {
		return cfg, err
	}
	cfg.Render.OmitRaw = !raw
	fac := ship.StringOption(b, "facility", "local0")
	f, ok := facilities[fac]
	if !ok {
		return cfg, ship.Errorf(b, "facility", "unknown facility %q", fac)
	}
	cfg.Facility = f
	if cfg.DialWait, err = ship.DurationOption(b, "dial_timeout", 5*time.Second); err != nil {
		return cfg, err
	}
	transport := ship.StringOption(b, "transport", "tls")
	switch transport {
	case "tls":
		tc, err := ship.TLSConfig(b)
		if err != nil {
			return cfg, err
		}
		if tc == nil {
			tc = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		cfg.TLS = tc
	case "tcp":
		for _, k := range []string{"tls", "tls_ca_file", "tls_cert_file", "tls_key_file", "tls_server_name", "tls_skip_verify"} {
			if _, set := b.Get(k); set {
				return cfg, ship.Errorf(b, k, "TLS options need transport = \"tls\"")
			}
		}
	default:
		return cfg, ship.Errorf(b, "transport", "unknown transport %q (tls or tcp)", transport)
	}
	return cfg, nil
}

// Sink writes to one syslog receiver over one connection at a time.
//
// Syslog over TCP has no acknowledgements: a message written to a
// connection the receiver (or a relay on the way) then drops is lost
// although the write succeeded. So the sink keeps every framed message it
// has written in a replay buffer, and after a broken connection it writes
// the buffer again on the next one before anything new: delivery is at
// least once, and a reader drops repeats by (node_id, seq). Before each
// write the sink asks the connection (TCP_INFO, where the platform reports
// it) whether the receiver's TCP stack has acknowledged every byte written
// so far; if so, the messages written at least ReplayGrace ago leave the
// buffer (the grace covers a receiver that dies with messages still unread
// in its socket buffer). The buffer is bounded by ReplayMaxBytes: under a
// steady flow the oldest leave it once it is full.
type Sink struct {
	cfg  Config
	mu   sync.Mutex
	conn net.Conn
	bw   *bufio.Writer
	// replay holds the framed messages written and not yet known to be
	// delivered, oldest first; replayBytes is their size.
	replay      []sent
	replayBytes int
	// resend is set when the connection broke with messages in replay:
	// the next connection writes them first.
	resend bool
}

// sent is one framed message in the replay buffer.
type sent struct {
	msg []byte
	at  time.Time // when it was written
}

var (
	_ ship.Sink     = (*Sink)(nil)
	_ ship.Targeter = (*Sink)(nil)
)

// NewSink returns a sink; it connects on the first Write.
func NewSink(cfg Config) *Sink {
	if cfg.Framing == "" {
		cfg.Framing = "octet-counting"
	}
	if cfg.Render.Format == "" {
		cfg.Render.Format = ship.FormatCEF
	}
	if cfg.AppName == "" {
		cfg.AppName = "vigil"
	}
	if cfg.Facility == 0 {
		cfg.Facility = 16
	}
	if cfg.DialWait <= 0 {
		cfg.DialWait = 5 * time.Second
	}
	if cfg.WriteWait <= 0 {
		cfg.WriteWait = 10 * time.Second
	}
	if cfg.ReplayGrace <= 0 {
		cfg.ReplayGrace = 10 * time.Second
	}
	if cfg.ReplayMaxBytes <= 0 {
		cfg.ReplayMaxBytes = 64 << 20
	}
	return &Sink{cfg: cfg}
}

// Target implements ship.Targeter.
func (s *Sink) Target() string {
	scheme := "syslog+tcp"
	if s.cfg.TLS != nil {
		scheme = "syslog+tls"
	}
	return scheme + "://" + s.cfg.Address
}

func (s *Sink) connect(ctx context.Context) error {
	if s.conn != nil {
		return nil
	}
	d := &net.Dialer{Timeout: s.cfg.DialWait}
	var c net.Conn
	var err error
	if s.cfg.TLS != nil {
		tc := s.cfg.TLS.Clone()
		if tc.ServerName == "" {
			tc.ServerName, _, _ = net.SplitHostPort(s.cfg.Address)
		}
		c, err = (&tls.Dialer{NetDialer: d, Config: tc}).DialContext(ctx, "tcp", s.cfg.Address)
	} else {
		c, err = d.DialContext(ctx, "tcp", s.cfg.Address)
	}
	if err != nil {
		return fmt.Errorf("syslog %s: %w", s.cfg.Address, err)
	}
	s.conn, s.bw = c, bufio.NewWriterSize(c, 64<<10)
	return nil
}

func (s *Sink) dropLocked() {
	if s.conn != nil {
		_ = s.conn.Close()
	}
	s.conn, s.bw = nil, nil
	if len(s.replay) > 0 {
		s.resend = true
	}
}

// frame returns msg framed for the configured framing.
func (s *Sink) frame(msg []byte) []byte {
	if s.cfg.Framing == "lf" {
		return append([]byte(strings.ReplaceAll(string(msg), "\n", " ")), '\n')
	}
	out := make([]byte, 0, len(msg)+8)
	out = strconv.AppendInt(out, int64(len(msg)), 10)
	out = append(out, ' ')
	return append(out, msg...)
}

// trimLocked drops from the replay buffer what the receiver has: when the
// connection reports every byte written so far as acknowledged, the
// messages written at least ReplayGrace ago; then, acknowledged or not,
// the oldest while the buffer is over ReplayMaxBytes.
func (s *Sink) trimLocked(now time.Time) {
	acked := s.conn != nil && allAcked(s.conn)
	cut := 0
	for cut < len(s.replay) && ((acked && now.Sub(s.replay[cut].at) >= s.cfg.ReplayGrace) || s.replayBytes > s.cfg.ReplayMaxBytes) {
		s.replayBytes -= len(s.replay[cut].msg)
		cut++
	}
	if cut > 0 {
		s.replay = append(s.replay[:0:0], s.replay[cut:]...)
	}
}

// Write implements ship.Sink: every record (with per_request, every one a
// stream sends) as one framed message, then a flush. After a broken
// connection the messages of the replay buffer go first.
func (s *Sink) Write(ctx context.Context, recs []ship.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.connect(ctx); err != nil {
		return err
	}
	deadline := time.Now().Add(s.cfg.WriteWait)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = s.conn.SetWriteDeadline(deadline)
	now := time.Now()
	if s.resend {
		for _, m := range s.replay {
			if _, err := s.bw.Write(m.msg); err != nil {
				s.dropLocked()
				return fmt.Errorf("syslog %s: replaying %d messages: %w", s.cfg.Address, len(s.replay), err)
			}
		}
		s.resend = false
	} else {
		// Acknowledgements of the earlier writes on this connection have
		// had time to arrive.
		s.trimLocked(now)
	}
	n := len(s.replay)
	for _, r := range s.cfg.Render.Batch(recs) {
		m := s.frame(s.message(r))
		s.replay = append(s.replay, sent{msg: m, at: now})
		s.replayBytes += len(m)
		if _, err := s.bw.Write(m); err != nil {
			s.forgetLocked(n)
			s.dropLocked()
			return fmt.Errorf("syslog %s: seq %d: %w", s.cfg.Address, r.Seq, err)
		}
	}
	if err := s.bw.Flush(); err != nil {
		s.forgetLocked(n)
		s.dropLocked()
		return fmt.Errorf("syslog %s: %w", s.cfg.Address, err)
	}
	if s.replayBytes > s.cfg.ReplayMaxBytes {
		s.trimLocked(time.Now())
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return nil
}

// forgetLocked removes from the replay buffer the messages of a write that
// failed (from index n on): the stream sends those records again itself.
func (s *Sink) forgetLocked(n int) {
	for _, m := range s.replay[n:] {
		s.replayBytes -= len(m.msg)
	}
	s.replay = s.replay[:n]
}

// Close implements ship.Sink. It closes the connection gracefully: it
// ends its side and waits (up to DialWait) for the receiver to close
// its own, which a receiver does once it has read everything; only then
// is the replay buffer known to be delivered and emptied. Otherwise the
// buffer is written again on the next connection.
func (s *Sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil && s.closeGracefullyLocked() {
		s.replay, s.replayBytes = nil, 0
	}
	s.dropLocked()
	return nil
}

// closeGracefullyLocked half-closes the connection and reports whether
// the receiver then closed its side (it read everything written).
func (s *Sink) closeGracefullyLocked() bool {
	type closeWriter interface{ CloseWrite() error }
	cw, ok := s.conn.(closeWriter)
	if !ok {
		return false
	}
	_ = s.conn.SetDeadline(time.Now().Add(s.cfg.DialWait))
	if err := cw.CloseWrite(); err != nil {
		return false
	}
	var b [512]byte
	for {
		if _, err := s.conn.Read(b[:]); err != nil {
			return errors.Is(err, io.EOF)
		}
	}
}

// severities maps logline severity levels to syslog severities (RFC 5424:
// 3 error, 4 warning, 5 notice, 6 informational).
var severities = map[int]int{logline.SeverityInfo: 6, logline.SeverityLow: 5, logline.SeverityMedium: 4, logline.SeverityHigh: 3}

// message renders one RFC 5424 message.
func (s *Sink) message(r ship.Rendered) []byte {
	sev := 6
	msgID := "-"
	if l, err := logline.Parse(r.Line); err == nil {
		lvl, _ := l.Severity(s.cfg.Render.Regulated)
		sev = severities[lvl]
		msgID = l.Type
	}
	ts := "-"
	if !r.Time.IsZero() {
		ts = r.Time.UTC().Format("2006-01-02T15:04:05.000000Z")
	}
	var b strings.Builder
	b.Grow(len(r.Value) + 160)
	fmt.Fprintf(&b, "<%d>1 %s %s %s - %s [%s node_id=\"%s\" seq=\"%d\" format=\"%s\"",
		s.cfg.Facility*8+sev, ts, header(s.cfg.Hostname), header(s.cfg.AppName), header(msgID), SDID, sdValue(r.NodeID), r.Seq, r.Format)
	if r.Err != nil {
		fmt.Fprintf(&b, " format_error=\"%s\"", sdValue(r.Err.Error()))
	}
	b.WriteString("] ")
	b.Write(r.Value)
	return []byte(b.String())
}

// header makes a header field printable US-ASCII without spaces ("-" when
// empty), as RFC 5424 requires, and bounds it to 48 characters.
func header(s string) string {
	var b strings.Builder
	for _, c := range s {
		if c > 32 && c < 127 {
			b.WriteRune(c)
		} else {
			b.WriteByte('_')
		}
		if b.Len() == 48 {
			break
		}
	}
	if b.Len() == 0 {
		return "-"
	}
	return b.String()
}

// sdValue escapes a structured-data parameter value: '"', '\' and ']'.
func sdValue(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, `]`, `\]`).Replace(s)
}
