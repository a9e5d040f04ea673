package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vigilsec/vigil/core/config"
	"gopkg.in/natefinch/lumberjack.v2"
)

// defaultLogRotateDuration is Vault's default for log_rotate_duration.
const defaultLogRotateDuration = 24 * time.Hour

// logFilePath applies Vault's naming rules for log_file: a path ending in
// a separator is a folder holding vigil.log; a name without an extension
// gets ".log".
func logFilePath(p string) string {
	if strings.HasSuffix(p, "/") || strings.HasSuffix(p, string(filepath.Separator)) {
		return filepath.Join(p, "vigil.log")
	}
	if filepath.Ext(p) == "" {
		return p + ".log"
	}
	return p
}

// opLogFile is the server's operational log file (log_file), written and
// rotated by lumberjack: rotation by size happens inside Write, rotation by
// age on a ticker. Archives are named vigil-<UTC timestamp>.log next to it.
// This is what lumberjack is made for; the audit trail owns its segment
// files itself (audit/chain).
type opLogFile struct {
	lj     *lumberjack.Logger
	ticker *time.Ticker // nil when the tick was given
	stop   chan struct{}
	done   chan struct{}
}

// openLogFile opens cfg.LogFile for appending. log_rotate_bytes is rounded
// up to whole MiB (lumberjack's unit); 0 never rotates by size.
// log_rotate_max_files 0 keeps every archive; -1 keeps one (lumberjack
// cannot keep none). tick, if not nil, replaces the age ticker, and
// afterRotate, if not nil, runs after each age rotation (tests).
func openLogFile(cfg *config.Config, tick <-chan time.Time, afterRotate func()) (*opLogFile, error) {
	path := logFilePath(cfg.LogFile)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	maxMB := 1 << 30 // never
	if cfg.LogRotateBytes > 0 {
		maxMB = int((cfg.LogRotateBytes + 1<<20 - 1) >> 20)
	}
	backups := cfg.LogRotateMaxFiles
	if backups < 0 {
		backups = 1
	}
	l := &opLogFile{
		lj:   &lumberjack.Logger{Filename: path, MaxSize: maxMB, MaxBackups: backups},
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	// Open (or create) the file now, so a bad path fails at start.
	if _, err := l.lj.Write(nil); err != nil {
		return nil, err
	}
	if tick == nil {
		d := cfg.LogRotateDuration
		if d <= 0 {
			d = defaultLogRotateDuration
		}
		l.ticker = time.NewTicker(d)
		tick = l.ticker.C
	}
	go func() {
		defer close(l.done)
		for {
			select {
			case <-tick:
				l.lj.Rotate()
				if afterRotate != nil {
					afterRotate()
				}
			case <-l.stop:
				return
			}
		}
	}()
	return l, nil
}

// Write appends p to the log file.
func (l *opLogFile) Write(p []byte) (int, error) { return l.lj.Write(p) }

// Close stops age rotation and closes the file.
func (l *opLogFile) Close() error {
	close(l.stop)
	<-l.done
	if l.ticker != nil {
		l.ticker.Stop()
	}
	return l.lj.Close()
}

// logOutput is standard error, plus the log file when log_file is set (as
// in Vault, the file is written in addition to standard error).
func logOutput(cfg *config.Config) (io.Writer, func(), error) {
	if cfg.LogFile == "" {
		return os.Stderr, func() {}, nil
	}
	f, err := openLogFile(cfg, nil, nil)
	if err != nil {
		return nil, nil, err
	}
	return io.MultiWriter(os.Stderr, f), func() { f.Close() }, nil
}
