package bench

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"
)

// Settings are the knobs of a benchmark run (the `vigil bench` flags).
type Settings struct {
	Scenarios   []string      // names, or "all"
	Duration    time.Duration // measured time per run (when Requests is 0)
	Requests    int64         // requests per measured run (overrides Duration)
	Connections int           // workers / connections (default 32)
	Rate        float64       // > 0: open loop at this many requests/s
	Warmup      time.Duration // excluded warm-up before every measured run
	Rounds      int           // measured runs per scenario and arm (0: 1 for one arm, 3 for several)

	Target   string   // "vigil": start Vigil servers (default unless Addr is set)
	Audit    []string // audit modes of the Vigil arms (default file)
	VigilBin string   // binary for --target vigil
	Addr     string   // external server
	Token    string   // its token
	Insecure bool     // skip TLS verification for Addr
	PeerBin  string   // Vault/OpenBao binary to start as a peer arm
	PeerKind string   // vault, openbao (or vigil for an A/A check)

	Dir      string // parent folder of the servers' temporary folders
	Keep     bool   // keep the servers' folders (data, audit logs, server.log)
	AuditTag bool   // make started servers record X-Vigil-Bench-Run in audit entries

	PGURL          string // PostgreSQL admin URL for db-creds
	KafkaBrokers   string // for file+kafka
	ClickHouseAddr string // for file+clickhouse

	// DrainTimeout bounds the wait, after a run on a streaming arm, for
	// the stream to ship everything the run wrote (default 60s).
	DrainTimeout time.Duration
	Seed         uint64
	Standard     bool     // recorded in the report
	Notes        []string // free text recorded in the report (--note)
	Command      []string // the command line, recorded in the report

	// Progress receives the live progress line (nil: none).
	Progress io.Writer
}

// Standard returns the standard suite: kv-read, kv-write and
// transit-encrypt against Vigil with audit off, file, file+kafka and
// file+clickhouse, 32 connections, closed loop, 2 s warm-up + 8 s
// measured, 2 rounds A/B/A/B. About five minutes on a 2-core machine.
func Standard() Settings {
	return Settings{
		Scenarios:   []string{"kv-read", "kv-write", "transit-encrypt"},
		Duration:    8 * time.Second,
		Warmup:      2 * time.Second,
		Connections: 32,
		Rounds:      2,
		Target:      "vigil",
		Audit:       []string{AuditOff, AuditFile, AuditFileKafka, AuditFileClickHouse},
		Standard:    true,
	}
}

// firstEnv returns the first non-empty environment variable of names.
func firstEnv(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}

// withDefaults fills unset fields (service addresses from the
// environment: VIGIL_BENCH_* first, then the test suite's VIGIL_TEST_*).
func (s Settings) withDefaults() Settings {
	if s.Connections <= 0 {
		s.Connections = 32
	}
	if s.Duration <= 0 && s.Requests <= 0 {
		s.Duration = 10 * time.Second
	}
	if s.Warmup < 0 {
		s.Warmup = 0
	}
	if s.Addr == "" && s.Target == "" {
		s.Target = "vigil"
	}
	if s.Target == "vigil" && len(s.Audit) == 0 {
		s.Audit = []string{AuditFile}
	}
	if s.PeerBin != "" && s.PeerKind == "" {
		s.PeerKind = "openbao"
		if strings.Contains(strings.ToLower(s.PeerBin), "vault") {
			s.PeerKind = "vault"
		}
	}
	if s.PGURL == "" {
		s.PGURL = firstEnv("VIGIL_BENCH_PG_URL", "VIGIL_TEST_PG_URL")
	}
	if s.KafkaBrokers == "" {
		s.KafkaBrokers = firstEnv("VIGIL_BENCH_KAFKA_BROKERS", "VIGIL_TEST_KAFKA_BROKERS")
	}
	if s.ClickHouseAddr == "" {
		s.ClickHouseAddr = firstEnv("VIGIL_BENCH_CLICKHOUSE_ADDR", "VIGIL_TEST_CLICKHOUSE_ADDR")
	}
	if s.DrainTimeout <= 0 {
		s.DrainTimeout = 60 * time.Second
	}
	if s.Dir == "" {
		s.Dir = os.TempDir()
	}
	if s.Seed == 0 {
		s.Seed = 1
	}
	return s
}

func (s Settings) validate() error {
	if s.Target != "" && s.Target != "vigil" {
		return fmt.Errorf("unknown --target %q (only \"vigil\"; use --addr for an external server)", s.Target)
	}
	if s.Addr != "" && s.Token == "" {
		return errors.New("--addr needs --token (or VAULT_TOKEN / VIGIL_TOKEN)")
	}
	if s.Target == "vigil" && s.VigilBin == "" {
		return errors.New("--target vigil needs the vigil binary")
	}
	for _, a := range s.Audit {
		ok := false
		for _, m := range auditModes {
			ok = ok || a == m
		}
		if !ok {
			return fmt.Errorf("unknown --audit %q (want %s)", a, strings.Join(auditModes, ", "))
		}
	}
	if s.PeerKind != "" && s.PeerBin == "" {
		return errors.New("--peer-kind needs --peer-bin")
	}
	if s.PeerBin != "" {
		ok := false
		for _, k := range peerKinds {
			ok = ok || s.PeerKind == k
		}
		if !ok {
			return fmt.Errorf("unknown --peer-kind %q (want %s)", s.PeerKind, strings.Join(peerKinds, ", "))
		}
	}
	if s.Rate < 0 {
		return errors.New("--rate must be positive")
	}
	if s.Requests < 0 {
		return errors.New("--requests must be positive")
	}
	return nil
}

// view is the settings as recorded in the report: durations as strings,
// secrets left out.
func (s Settings) view() map[string]any {
	mode := "closed loop"
	if s.Rate > 0 {
		mode = fmt.Sprintf("open loop at %g req/s", s.Rate)
	}
	v := map[string]any{
		"scenarios": s.Scenarios, "load_model": mode, "connections": s.Connections,
		"warmup": s.Warmup.String(), "rounds": s.Rounds, "seed": s.Seed, "standard": s.Standard,
		"audit_tag": s.AuditTag, "data_dir_parent": s.Dir,
	}
	if s.Requests > 0 {
		v["requests_per_run"] = s.Requests
	} else {
		v["duration_per_run"] = s.Duration.String()
	}
	if s.Rate > 0 {
		v["rate"] = s.Rate
	}
	if s.Target != "" {
		v["target"] = s.Target
		v["audit"] = s.Audit
		v["vigil_bin"] = s.VigilBin
	}
	if s.Addr != "" {
		v["addr"] = s.Addr
	}
	if s.PeerBin != "" {
		v["peer_bin"], v["peer_kind"] = s.PeerBin, s.PeerKind
	}
	if s.PGURL != "" {
		v["pg_url"] = redactURL(s.PGURL)
	}
	if s.KafkaBrokers != "" {
		v["kafka_brokers"] = s.KafkaBrokers
	}
	if s.ClickHouseAddr != "" {
		v["clickhouse_addr"] = s.ClickHouseAddr
	}
	return v
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}
