package main

// `vigil audit verify --kafka BROKERS --topic T` and
// `vigil audit verify --clickhouse ADDR [--database D --table T]`:
// re-verify the hash chain from what an audit stream delivered.
//
// The local `vigil audit verify PATH...` lives in audit.go. This file adds
// the remote forms to the same command name: its init (which runs after
// audit.go's, files being initialised in name order) wraps the registered
// "audit verify" so that an invocation with -kafka or -clickhouse comes
// here and every other one goes to the local verifier unchanged. The
// command "audit verify-stream" is the same remote verifier under its own
// name, should the wrapping ever be undone.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/vigilsec/vigil/audit/chain"
	"github.com/vigilsec/vigil/audit/ship"
	"github.com/vigilsec/vigil/audit/ship/clickhouse"
	"github.com/vigilsec/vigil/audit/ship/kafka"
)

func init() {
	register(&command{name: "audit verify-stream", synopsis: "Re-verify the audit hash chain from Kafka or ClickHouse", run: runAuditVerifyRemote})
	if local, ok := commands["audit verify"]; ok {
		localRun := local.run
		local.synopsis += "; with -kafka or -clickhouse, from a stream's sink"
		local.run = func(args []string) int {
			if isRemoteVerify(args) {
				return runAuditVerifyRemote(args)
			}
			return localRun(args)
		}
	} else {
		register(&command{name: "audit verify", synopsis: "Re-verify the audit hash chain from Kafka or ClickHouse", run: runAuditVerifyRemote})
	}
}

// isRemoteVerify reports whether args ask for a sink (-kafka/-clickhouse,
// with one or two dashes, "=value" or not).
func isRemoteVerify(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		name := strings.TrimLeft(a, "-")
		if len(name) == len(a) {
			continue
		}
		name, _, _ = strings.Cut(name, "=")
		if name == "kafka" || name == "clickhouse" {
			return true
		}
	}
	return false
}

// runAuditVerifyRemote re-verifies chains read back from a sink.
func runAuditVerifyRemote(args []string) int {
	fs := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	setUsage(fs, "audit verify -kafka BROKERS -topic TOPIC [options]\n       vigil audit verify -clickhouse ADDR [-database DB] [-table TABLE] [options]", `
Re-verifies the audit hash chain from what an audit stream delivered: every
message of a Kafka topic (all partitions, earliest to latest; vault, ocsf or
cef format, the latter two when sent with their raw line), or every row of
a ClickHouse table (SELECT ... FINAL ordered by seq). Lines repeated by
at-least-once delivery are dropped after checking they are identical; each
node's chain is then verified like a local log: hashes, links, segment
headers, checkpoints (signatures with -pubkey), and a trusted checkpoint
with -checkpoint. The chain must start at seq 1 unless -partial is given
(the sink's retention dropped its start). Prints one line per node and
exits 1 when a chain fails or has a gap, 2 on errors.

    $ vigil audit checkpoint-key -output key.pem
    $ vigil audit verify -kafka k1:9092,k2:9092 -topic vigil-audit -pubkey key.pem
    $ vigil audit verify -clickhouse ch1:9000 -database audit -table vigil_audit -pubkey key.pem`)
	brokers := fs.String("kafka", "", "Kafka brokers, comma-separated")
	topic := fs.String("topic", "", "Kafka topic")
	kTLS := fs.Bool("kafka-tls", false, "connect to Kafka over TLS")
	kCA := fs.String("kafka-ca-file", "", "CA certificate (PEM) for Kafka TLS")
	kMech := fs.String("kafka-sasl-mechanism", "", "plain, scram-sha-256 or scram-sha-512")
	kUser := fs.String("kafka-sasl-username", "", "SASL username")
	kPass := fs.String("kafka-sasl-password", "", "SASL password (default $VIGIL_KAFKA_SASL_PASSWORD)")
	chAddr := fs.String("clickhouse", "", "ClickHouse native address(es), comma-separated (host:9000)")
	db := fs.String("database", "default", "ClickHouse database")
	table := fs.String("table", "vigil_audit", "ClickHouse table")
	chUser := fs.String("username", "default", "ClickHouse user")
	chPass := fs.String("password", "", "ClickHouse password (default $VIGIL_CLICKHOUSE_PASSWORD)")
	chTLS := fs.Bool("clickhouse-tls", false, "connect to ClickHouse over TLS")
	chCA := fs.String("clickhouse-ca-file", "", "CA certificate (PEM) for ClickHouse TLS")
	pubkey := fs.String("pubkey", "", "file with the checkpoint public key (PEM, base64 or raw)")
	cpArg := fs.String("checkpoint", "", "trusted checkpoint: JSON, or a file containing it")
	node := fs.String("node-id", "", "verify only this node's chain")
	partial := fs.Bool("partial", false, "the sink does not hold the chain's start: trust its first line")
	timeout := fs.Duration("timeout", 0, "give up after this long (0: no limit)")
	pos, code, ok := parseCmd(fs, args)
	if !ok {
		return code
	}
	if c := wantArgs(pos, 0, 0); c != 0 {
		return c
	}
	if (*brokers == "") == (*chAddr == "") {
		return usageError("give exactly one of -kafka or -clickhouse")
	}
	if *brokers != "" && *topic == "" {
		return usageError("-kafka needs -topic")
	}
	opts := chain.VerifyOptions{NodeID: *node, TrustFirst: *partial}
	if err := verifyTrust(&opts, *pubkey, *cpArg); err != nil {
		return fail("%v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	v := ship.NewVerifier(ctx, ship.VerifyOptions{Chain: opts})
	var source string
	var read int64
	start := time.Now()
	add := func(line []byte) error {
		read++
		return v.Add(line)
	}
	if *brokers != "" {
		source = "kafka topic " + *topic
		ro := kafka.ReadOptions{Brokers: splitAddrs(*brokers), Topic: *topic}
		if *kTLS || *kCA != "" {
			tc, err := tlsWithCA(*kCA)
			if err != nil {
				return fail("%v", err)
			}
			ro.TLS = tc
		}
		mech, err := saslFlags(*kMech, *kUser, envOr("VIGIL_KAFKA_SASL_PASSWORD", *kPass))
		if err != nil {
			return fail("%v", err)
		}
		ro.SASL = mech
		err = kafka.ReadTopic(ctx, ro, func(m kafka.Message) error {
			line, err := kafka.OriginalLine(m)
			if err != nil {
				return fmt.Errorf("partition %d offset %d: %w", m.Partition, m.Offset, err)
			}
			return add(line)
		})
		if err != nil {
			return fail("reading %s: %v", source, err)
		}
	} else {
		source = fmt.Sprintf("clickhouse table %s.%s", *db, *table)
		cfg := clickhouse.Config{Addr: splitAddrs(*chAddr), Database: *db, Table: *table, Username: *chUser,
			Password: envOr("VIGIL_CLICKHOUSE_PASSWORD", *chPass), DialTimeout: 10 * time.Second}
		if *chTLS || *chCA != "" {
			tc, err := tlsWithCA(*chCA)
			if err != nil {
				return fail("%v", err)
			}
			cfg.TLS = tc
		}
		nodes, err := clickhouse.Nodes(ctx, cfg)
		if err != nil {
			return fail("reading %s: %v", source, err)
		}
		for _, n := range nodes {
			if *node != "" && n != *node {
				continue
			}
			if err := clickhouse.ReadLines(ctx, cfg, n, add); err != nil {
				return fail("reading %s: %v", source, err)
			}
		}
	}
	results := v.Close()
	fmt.Fprintf(stderr, "read %d lines from %s in %s\n", read, source, time.Since(start).Round(time.Millisecond))
	if len(results) == 0 {
		fmt.Fprintf(stdout, "FAILED: no audit lines in %s\n", source)
		return 1
	}
	exit := 0
	for _, r := range results {
		if r.Err != nil {
			return fail("verifying node %s: %v", r.NodeID, r.Err)
		}
		for _, w := range r.Report.Warnings {
			fmt.Fprintf(stderr, "WARNING: node %s: %s: line %d: %s\n", r.NodeID, w.Kind, w.Line, w.Detail)
		}
		switch {
		case !r.OK():
			exit = 1
			if f := r.Report.Failure; f != nil {
				fmt.Fprintf(stdout, "FAILED: node %s: %s at seq %d: %s\n", r.NodeID, f.Kind, f.Seq, f.Detail)
			} else {
				fmt.Fprintf(stdout, "FAILED: node %s: %s\n", r.NodeID, r.Conflict)
			}
		case !r.Complete():
			exit = 1
			fmt.Fprintf(stdout, "FAILED: node %s: lines are missing between seq %d and %d\n", r.NodeID, r.Report.FirstSeq, r.Report.LastSeq)
		}
		fmt.Fprintln(stdout, r.String())
	}
	return exit
}

func splitAddrs(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func tlsWithCA(caFile string) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no PEM certificates", caFile)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

func saslFlags(mech, user, pass string) (sasl.Mechanism, error) {
	switch strings.ToLower(mech) {
	case "":
		return nil, nil
	case "plain":
		return plain.Mechanism{Username: user, Password: pass}, nil
	case "scram-sha-256":
		return scram.Mechanism(scram.SHA256, user, pass)
	case "scram-sha-512":
		return scram.Mechanism(scram.SHA512, user, pass)
	}
	return nil, fmt.Errorf("unknown -kafka-sasl-mechanism %q (plain, scram-sha-256 or scram-sha-512)", mech)
}
