package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vigilsec/vigil/cmd/vigil/wire"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/server"
)

func init() {
	register(&command{name: "server", synopsis: "Start a Vigil server", run: runServer})
}

func version() string { return server.Version }

func runServer(args []string) int {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	var (
		cfgPath    = fs.String("config", "", "path to a configuration file (HCL or JSON)")
		dev        = fs.Bool("dev", false, "development mode: single node, auto-initialised and unsealed, secret/ mounted")
		devRoot    = fs.String("dev-root-token-id", "", "dev mode: the root token's value")
		devListen  = fs.String("dev-listen-address", "127.0.0.1:8200", "dev mode: address to listen on")
		devDataDir = fs.String("dev-data-dir", "", "dev mode: data folder (default ./vigil-dev-data)")
		logLevel   = fs.String("log-level", "", "log level: trace, debug, info, warn, error")
		devNoAudit = fs.Bool("dev-no-audit", false, "dev mode: do not enable the default file audit device")
	)
	if err := fs.Parse(args); err != nil {
		return 1
	}
	var cfg *config.Config
	var err error
	switch {
	case *cfgPath != "":
		cfg, err = config.Load(*cfgPath)
		if err != nil {
			fmt.Fprintln(os.Stderr, "Error:", err)
			return 1
		}
	case *dev:
		cfg = &config.Config{LogLevel: "info"}
	default:
		fmt.Fprintln(os.Stderr, "Error: a configuration file (-config) is required unless -dev is given")
		return 1
	}
	if *dev {
		dir := *devDataDir
		if dir == "" {
			dir = server.DevDataDir()
		}
		dir, _ = filepath.Abs(dir)
		if cfg.Storage == nil {
			cfg.Storage = &config.Storage{Type: "raft", Path: filepath.Join(dir, "storage"), NodeID: "dev-node"}
		}
		cfg.Listeners = []config.Listener{{Type: "tcp", Address: *devListen, TLSDisable: true}}
		cfg.UI = true
		if len(cfg.Audit) == 0 && !*devNoAudit {
			cfg.Audit = append(cfg.Audit, config.Block{Type: "file", Name: "file", File: "(dev)",
				Options: map[string]config.Value{"path": {Value: filepath.Join(dir, "audit", "audit.log")}}})
		}
		if *logLevel == "" && cfg.LogLevel == "" {
			cfg.LogLevel = "info"
		}
	}
	if *logLevel != "" {
		cfg.LogLevel = *logLevel
	}
	if err := lockMemory(cfg, *dev); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		return 1
	}
	logOut, closeLog, err := logOutput(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "Error: log_file:", err)
		return 1
	}
	defer closeLog()
	logger := newLogger(logOut, cfg.LogLevel, cfg.LogFormat)
	for _, w := range cfg.Warnings {
		logger.Warn("config: " + w)
	}
	if cfg.PidFile != "" {
		if err := os.WriteFile(cfg.PidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "Error: pid_file:", err)
			return 1
		}
		defer os.Remove(cfg.PidFile)
	}
	startPprof(logger)
	opts, err := wire.Options(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		return 1
	}
	opts.Dev, opts.DevRootTokenID, opts.Logger = *dev, *devRoot, logger
	srv, err := server.New(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		return 1
	}
	ctx := context.Background()
	if *dev {
		info, err := srv.DevBootstrap(ctx, *devRoot)
		if err != nil {
			fmt.Fprintln(os.Stderr, "Error:", err)
			_ = srv.Close(ctx)
			return 1
		}
		if err := srv.Listen(""); err != nil {
			fmt.Fprintln(os.Stderr, "Error:", err)
			_ = srv.Close(ctx)
			return 1
		}
		printDevBanner(srv, info)
	} else if err := srv.Listen(""); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		_ = srv.Close(ctx)
		return 1
	} else {
		fmt.Printf("==> Vigil server started on %s (node %s). Initialise with `vigil operator init`, then unseal.\n", srv.Addr(), srv.NodeID())
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	for sig := range sigs {
		if sig == syscall.SIGHUP {
			logger.Info("SIGHUP received: reopening audit files")
			srv.Reload()
			continue
		}
		logger.Info("shutting down", "signal", sig.String())
		break
	}
	sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := srv.Close(sctx); err != nil {
		fmt.Fprintln(os.Stderr, "Error during shutdown:", err)
		return 1
	}
	return 0
}

// startPprof serves net/http/pprof on the loopback address named by
// VIGIL_PPROF_ADDR (e.g. 127.0.0.1:6060, or 127.0.0.1:0 for any free port;
// the address is logged). Off unless set. VIGIL_PPROF_BLOCK_RATE and
// VIGIL_PPROF_MUTEX_FRACTION, if set, enable the block profile (ns, see
// runtime.SetBlockProfileRate) and the mutex profile
// (runtime.SetMutexProfileFraction). For profiling only: never expose it.
func startPprof(logger *slog.Logger) {
	addr := os.Getenv("VIGIL_PPROF_ADDR")
	if addr == "" {
		return
	}
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		logger.Error("VIGIL_PPROF_ADDR must be a loopback host:port; pprof not started", "addr", addr)
		return
	}
	if v, err := strconv.Atoi(os.Getenv("VIGIL_PPROF_BLOCK_RATE")); err == nil {
		runtime.SetBlockProfileRate(v)
	}
	if v, err := strconv.Atoi(os.Getenv("VIGIL_PPROF_MUTEX_FRACTION")); err == nil {
		runtime.SetMutexProfileFraction(v)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		logger.Error("pprof listener", "addr", addr, "error", err)
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	logger.Warn("pprof enabled (VIGIL_PPROF_ADDR); do not use in production", "addr", ln.Addr().String())
	go func() { _ = http.Serve(ln, mux) }()
}

// newLogger logs to out at level, as text or (format "json") one JSON
// object per line.
func newLogger(out io.Writer, level, format string) *slog.Logger {
	var l slog.Level
	switch strings.ToLower(level) {
	case "trace", "debug":
		l = slog.LevelDebug
	case "warn", "warning":
		l = slog.LevelWarn
	case "error", "err":
		l = slog.LevelError
	default:
		l = slog.LevelInfo
	}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(out, &slog.HandlerOptions{Level: l}))
	}
	return slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: l}))
}

func printDevBanner(srv *server.Server, info *server.DevInfo) {
	addr := "http://" + srv.Addr()
	fmt.Printf(`==> Vigil server started in development mode. Do not run dev mode in production.

    Listening on:  %s
    Data folder:   %s
    Unseal Key:    %s
    Root Token:    %s

The unseal key and root token are kept in the data folder so a restart
unseals itself. To talk to this server:

    export VIGIL_ADDR='%s'
    export VIGIL_TOKEN='%s'

`, addr, filepath.Dir(srv.DataDir()), info.UnsealKey, info.RootToken, addr, info.RootToken)
}
