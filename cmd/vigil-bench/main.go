// Command vigil-bench is Vigil's load generator (`make bench`, and `vigil
// bench`, which runs it). It drives any server speaking Vault's HTTP API
// with the scenarios of package bench. It is a binary of its own so that
// the server binary links neither the load generator nor its dependencies
// (HdrHistogram, Kafka and ClickHouse readers, scenario drivers).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/vigilsec/vigil/bench"
)

// stdout and stderr are variables so tests can capture output.
var (
	stdout io.Writer = os.Stdout
	stderr io.Writer = os.Stderr
)

func main() { os.Exit(runBench(os.Args[1:])) }

// vigilBinEnv names the Vigil binary to start when --vigil-bin is not
// given; `vigil bench` sets it to itself.
const vigilBinEnv = "VIGIL_BENCH_VIGIL_BIN"

// defaultVigilBin is $VIGIL_BENCH_VIGIL_BIN, else the vigil binary next to
// this one (bin/vigil beside bin/vigil-bench).
func defaultVigilBin() (string, error) {
	if b := os.Getenv(vigilBinEnv); b != "" {
		return b, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find this binary: %w", err)
	}
	b := filepath.Join(filepath.Dir(exe), "vigil")
	if _, err := os.Stat(b); err != nil {
		return "", fmt.Errorf("no vigil binary next to %s: give --vigil-bin or $%s", exe, vigilBinEnv)
	}
	return b, nil
}

// benchHelp is the command's description in its usage text.
const benchHelp = `
Drives a server speaking Vault's HTTP API with benchmark scenarios and
reports throughput, latency percentiles (HdrHistogram), errors by status,
server CPU seconds per 1k requests and — for Vigil — the audit pipeline's
figures from its metrics. By default it starts a Vigil dev server (the vigil
binary next to this one) with the file audit device; --audit off,file compares audit modes,
--peer-bin compares with a Vault or OpenBao binary on the same machine (arms
alternate A/B/A/B and ratios are reported pair by pair).

  vigil bench --scenario kv-read,transit-encrypt --duration 10s
  vigil bench --scenario kv-write --audit off,file --rounds 3
  vigil bench --scenario all --peer-bin /usr/local/bin/bao --peer-kind openbao --out ab.json
  vigil bench --addr https://vault.example:8200 --token $VAULT_TOKEN --scenario kv-read --rate 500
  vigil bench --standard`

// benchOptions are the parsed `vigil bench` flags.
type benchOptions struct {
	settings bench.Settings
	out, md  string
	list     bool
}

// parseBenchFlags turns the command line into settings. --standard sets
// the standard suite first; flags given explicitly override it.
func parseBenchFlags(args []string) (*benchOptions, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		scen      = fs.String("scenario", "kv-read", "scenarios to run, comma-separated ("+strings.Join(bench.ScenarioOrder(), ", ")+", or all)")
		duration  = fs.Duration("duration", 10*time.Second, "measured time per run")
		requests  = fs.Int64("requests", 0, "requests per measured run (instead of --duration)")
		conns     = fs.Int("connections", 32, "connections: closed-loop workers, or the most requests in flight with --rate")
		rate      = fs.Float64("rate", 0, "open loop at this many requests per second (default: closed loop)")
		warmup    = fs.Duration("warmup", 2*time.Second, "warm-up before every measured run (excluded from the results)")
		rounds    = fs.Int("rounds", 0, "measured runs per scenario and arm, arms alternating A/B/A/B (default 1 for one arm, 3 for several)")
		target    = fs.String("target", "", `"vigil": start Vigil servers from this binary (default unless --addr is given)`)
		audit     = fs.String("audit", "file", "audit modes of the Vigil servers, comma-separated: "+strings.Join(bench.AuditModes(), ", ")+" (one arm each)")
		addr      = fs.String("addr", "", "drive an external server at this address instead")
		token     = fs.String("token", "", "token for --addr (default $VIGIL_TOKEN or $VAULT_TOKEN)")
		insecure  = fs.Bool("tls-skip-verify", false, "do not verify the TLS certificate of --addr")
		peerBin   = fs.String("peer-bin", "", "start this Vault or OpenBao binary as a peer arm (raft, init, unseal, file audit device)")
		peerKind  = fs.String("peer-kind", "", "vault or openbao (default guessed from --peer-bin); vigil for an A/A check")
		out       = fs.String("out", "", "write the JSON report here (and the Markdown next to it as .md)")
		md        = fs.String("md", "", "write the Markdown report here (default: --out with .md)")
		standard  = fs.Bool("standard", false, "the standard suite: kv-read, kv-write, transit-encrypt × audit off, file, file+kafka, file+clickhouse; writes bench/results/latest.{json,md}")
		dir       = fs.String("dir", "", "parent folder of the servers' temporary data folders (default $TMPDIR); its disk takes the fsyncs")
		keep      = fs.Bool("keep", false, "keep the servers' data folders (data, audit logs, server.log)")
		auditTag  = fs.Bool("audit-tag", false, "make started servers record the X-Vigil-Bench-Run header in audit entries")
		pgURL     = fs.String("pg-url", "", "PostgreSQL admin URL for db-creds (default $VIGIL_BENCH_PG_URL or $VIGIL_TEST_PG_URL)")
		kafka     = fs.String("kafka-brokers", "", "Kafka brokers for file+kafka (default $VIGIL_BENCH_KAFKA_BROKERS or $VIGIL_TEST_KAFKA_BROKERS)")
		ch        = fs.String("clickhouse-addr", "", "ClickHouse native address for file+clickhouse (default $VIGIL_BENCH_CLICKHOUSE_ADDR or $VIGIL_TEST_CLICKHOUSE_ADDR)")
		vigilBin  = fs.String("vigil-bin", "", "vigil binary to start for --target vigil (default: $"+vigilBinEnv+", else vigil next to this binary)")
		drainTime = fs.Duration("drain-timeout", time.Minute, "after a run on a streaming arm, wait at most this long for the stream to ship everything the run wrote")
		quiet     = fs.Bool("quiet", false, "no progress line on stderr")
		list      = fs.Bool("list", false, "list the scenarios and exit")
		notes     multiFlag
	)
	fs.Var(&notes, "note", "free text recorded in the report (repeatable), e.g. what changed since the last run")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: vigil bench [options]\n\n"+strings.TrimSpace(benchHelp)+"\n\nOptions:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	o := &benchOptions{list: *list, out: *out, md: *md}
	s := bench.Settings{}
	if *standard {
		s = bench.Standard()
		if !set["out"] {
			o.out = filepath.Join("bench", "results", "latest.json")
		}
	}
	if !*standard || set["scenario"] {
		s.Scenarios = strings.Split(*scen, ",")
	}
	if !*standard || set["duration"] {
		s.Duration = *duration
	}
	if set["requests"] {
		s.Requests = *requests
		if !set["duration"] {
			s.Duration = 0
		}
	}
	if !*standard || set["connections"] {
		s.Connections = *conns
	}
	if !*standard || set["warmup"] {
		s.Warmup = *warmup
	}
	if !*standard || set["rounds"] {
		s.Rounds = *rounds
	}
	if !*standard || set["audit"] {
		s.Audit = splitList(*audit)
	}
	s.Rate, s.Target, s.Addr, s.Insecure = *rate, *target, *addr, *insecure
	s.Token = *token
	if s.Addr != "" {
		if s.Token == "" {
			s.Token = envOr("VIGIL_TOKEN", os.Getenv("VAULT_TOKEN"))
		}
		if !set["target"] {
			s.Target = ""
		}
		if !set["audit"] {
			s.Audit = nil
		}
	} else if s.Target == "" {
		s.Target = "vigil"
	}
	s.PeerBin, s.PeerKind = *peerBin, *peerKind
	s.Dir, s.Keep, s.AuditTag = *dir, *keep, *auditTag
	s.PGURL, s.KafkaBrokers, s.ClickHouseAddr = *pgURL, *kafka, *ch
	s.DrainTimeout = *drainTime
	if s.Target == "vigil" {
		s.VigilBin = *vigilBin
		if s.VigilBin == "" && !*list {
			b, err := defaultVigilBin()
			if err != nil {
				return nil, err
			}
			s.VigilBin = b
		}
	}
	if !*quiet {
		s.Progress = stderr
	}
	s.Notes = notes
	s.Command = append([]string{"vigil", "bench"}, args...)
	if o.out != "" && o.md == "" {
		o.md = strings.TrimSuffix(o.out, filepath.Ext(o.out)) + ".md"
	}
	o.settings = s
	return o, nil
}

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, "; ") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func runBench(args []string) int {
	o, err := parseBenchFlags(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "Error:", err)
		return 1
	}
	if o.list {
		for _, s := range bench.Scenarios() {
			fmt.Fprintf(stdout, "%-16s %s\n", s.Name, s.Summary)
		}
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, runErr := bench.Run(ctx, o.settings)
	if rep != nil {
		fmt.Fprint(stdout, rep.Markdown())
		if err := rep.WriteFiles(o.out, o.md); err != nil {
			fmt.Fprintln(stderr, "Error: write report:", err)
			return 1
		}
		if o.out != "" {
			fmt.Fprintf(stderr, "vigil bench: wrote %s and %s\n", o.out, o.md)
		}
	}
	if runErr != nil {
		fmt.Fprintln(stderr, "Error:", runErr)
		return 1
	}
	return 0
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
