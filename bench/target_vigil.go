package bench

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Audit modes of a Vigil arm.
const (
	AuditOff            = "off"
	AuditFile           = "file"
	AuditFileKafka      = "file+kafka"
	AuditFileClickHouse = "file+clickhouse"
)

// auditModes lists the modes --audit accepts.
var auditModes = []string{AuditOff, AuditFile, AuditFileKafka, AuditFileClickHouse}

// AuditModes returns the list above (a copy: callers may change it).
func AuditModes() []string { return slices.Clone(auditModes) }

// VigilTarget starts `vigil server -dev` in a temporary folder: single-node
// raft, KV v2 at secret/, and — unless the mode is "off" (-dev-no-audit) —
// the dev file audit device at <data>/audit/audit.log with its default
// settings (fsync on every group commit). Stream modes add an
// audit_stream block through a config file.
type VigilTarget struct {
	Bin        string // the vigil binary
	Audit      string // one of auditModes
	Dir        string // parent of the temporary folder ("": os.TempDir())
	Keep       bool   // keep the folder after Stop
	AuditTag   bool   // record X-Vigil-Bench-Run in audit entries
	Kafka      string // brokers, for file+kafka
	ClickHouse string // native address, for file+clickhouse
	RunID      string

	tmp   string
	url   string
	token string
	proc  *process
	info  ArmInfo
	strm  []string
}

// ArmName is how the arm is labelled in reports.
func (t *VigilTarget) ArmName() string { return "vigil audit=" + t.Audit }

// Start implements Target.
func (t *VigilTarget) Start(ctx context.Context) error {
	t.info = ArmInfo{Name: t.ArmName(), Kind: "vigil", Audit: t.Audit, Binary: t.Bin}
	var streams []string
	switch t.Audit {
	case AuditOff, AuditFile:
	case AuditFileKafka:
		if t.Kafka == "" {
			why := ""
			if r := os.Getenv("VIGIL_TEST_KAFKA_SKIP_REASON"); r != "" {
				why = " (the test services report: " + r + ")"
			}
			return skipf("file+kafka needs a Kafka broker: pass --kafka-brokers or set VIGIL_BENCH_KAFKA_BROKERS / VIGIL_TEST_KAFKA_BROKERS%s", why)
		}
		if err := reachable(t.Kafka); err != nil {
			return skipf("Kafka at %s is not reachable: %v", t.Kafka, err)
		}
		streams = []string{"kafka"}
	case AuditFileClickHouse:
		if t.ClickHouse == "" {
			return skipf("file+clickhouse needs ClickHouse: pass --clickhouse-addr or set VIGIL_BENCH_CLICKHOUSE_ADDR / VIGIL_TEST_CLICKHOUSE_ADDR")
		}
		if err := reachable(t.ClickHouse); err != nil {
			return skipf("ClickHouse at %s is not reachable: %v", t.ClickHouse, err)
		}
		streams = []string{"clickhouse"}
	default:
		return fmt.Errorf("unknown audit mode %q (want %s)", t.Audit, strings.Join(auditModes, ", "))
	}
	tmp, err := os.MkdirTemp(t.Dir, "vigil-bench-"+strings.ReplaceAll(t.Audit, "+", "-")+"-")
	if err != nil {
		return err
	}
	t.tmp = tmp
	port, err := freePort()
	if err != nil {
		return err
	}
	t.url = fmt.Sprintf("http://127.0.0.1:%d", port)
	t.token = "vbench-root-" + randomHex(8)
	dataDir := filepath.Join(tmp, "data")
	args := []string{"server", "-dev", "-dev-listen-address", fmt.Sprintf("127.0.0.1:%d", port),
		"-dev-data-dir", dataDir, "-dev-root-token-id", t.token, "-log-level", "warn"}
	if t.Audit == AuditOff {
		args = append(args, "-dev-no-audit")
	} else {
		t.info.AuditLog = filepath.Join(dataDir, "audit", "audit.log")
	}
	var cfg strings.Builder
	if t.AuditTag {
		fmt.Fprintf(&cfg, "audit_settings {\n  request_headers = [%q]\n}\n", TagHeader)
	}
	for _, s := range streams {
		cfg.WriteString(streamConfig(s, t.Kafka, t.ClickHouse, t.RunID))
	}
	if cfg.Len() > 0 {
		p := filepath.Join(tmp, "bench.hcl")
		if err := os.WriteFile(p, []byte(cfg.String()), 0o600); err != nil {
			return err
		}
		args = append(args, "-config", p)
		t.info.Config = cfg.String()
	}
	t.info.Args, t.info.DataDir, t.info.Addr = args, dataDir, t.url
	proc, err := startProcess(t.Bin, args, filepath.Join(tmp, "server.log"), nil)
	if err != nil {
		return err
	}
	t.proc = proc
	api := t.api("setup")
	if err := waitHTTP(ctx, api, proc, "sys/health", 60*time.Second, func(s int) bool { return s == 200 }); err != nil {
		return fmt.Errorf("%s: %w", t.ArmName(), err)
	}
	t.info.Version = serverVersion(ctx, api)
	devs, err := auditDevices(ctx, api)
	switch {
	case err != nil && StatusOf(err) == 404:
		if t.Audit != AuditOff {
			return skipf("this vigil build has no audit subsystem (GET sys/audit: 404): the %q arm would run unaudited", t.Audit)
		}
	case err != nil:
		return fmt.Errorf("%s: list audit devices: %w", t.ArmName(), err)
	default:
		t.info.Devices = devs
		if t.Audit != AuditOff && len(devs) == 0 {
			return skipf("this vigil build enabled no audit device in dev mode (sys/audit lists none): the %q arm would run unaudited", t.Audit)
		}
		if t.Audit == AuditOff && len(devs) > 0 {
			return fmt.Errorf("%s: -dev-no-audit still left audit devices enabled: %v", t.ArmName(), devs)
		}
	}
	if len(streams) > 0 {
		got, err := streamStatus(ctx, api)
		if err != nil {
			return skipf("this vigil build does not ship audit streams (%v): the %q arm would be plain file audit", err, t.Audit)
		}
		var names []string
		for _, g := range got {
			names = append(names, fmt.Sprintf("%s (%s)", g.Name, g.Type))
		}
		for _, s := range streams {
			found := false
			for _, g := range got {
				found = found || g.Name == streamName(s)
			}
			if !found {
				return skipf("the %s stream did not start (sys/audit-stream lists %v): the %q arm would be plain file audit", s, names, t.Audit)
			}
		}
		t.strm = streams
		t.info.Streams = names
	}
	return nil
}

func (t *VigilTarget) api(tag string) *API {
	return &API{Base: t.url, Token: t.token, Tag: tag, HTTP: &http.Client{Transport: newTransport(4, false), Timeout: 30 * time.Second}}
}

// Stop implements Target.
func (t *VigilTarget) Stop(ctx context.Context) error {
	var err error
	if t.proc != nil {
		err = t.proc.stop(30 * time.Second)
	}
	if t.tmp != "" && !t.Keep {
		if rerr := os.RemoveAll(t.tmp); rerr != nil && err == nil {
			err = rerr
		}
		for _, s := range t.strm {
			if derr := dropStreamData(ctx, s, t.Kafka, t.ClickHouse, t.RunID); derr != nil && err == nil {
				err = fmt.Errorf("remove the run's %s data: %w", s, derr)
			}
		}
	}
	return err
}

func (t *VigilTarget) URL() string   { return t.url }
func (t *VigilTarget) Token() string { return t.token }
func (t *VigilTarget) PID() int {
	if t.proc == nil {
		return 0
	}
	return t.proc.PID()
}
func (t *VigilTarget) Info() ArmInfo      { return t.info }
func (t *VigilTarget) VigilMetrics() bool { return true }
func (t *VigilTarget) Streams() []string  { return t.strm }

// reachable dials the first address of a comma-separated list.
func reachable(addrs string) error {
	a := strings.TrimSpace(strings.Split(addrs, ",")[0])
	c, err := net.DialTimeout("tcp", a, 2*time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}
