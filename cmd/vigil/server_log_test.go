package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core/config"
)

func TestLogFilePath(t *testing.T) {
	for in, want := range map[string]string{
		"/var/log/vigil/":          "/var/log/vigil/vigil.log",
		"/var/log/vigil/server":    "/var/log/vigil/server.log",
		"/var/log/vigil/vigil.txt": "/var/log/vigil/vigil.txt",
	} {
		if got := logFilePath(in); got != want {
			t.Errorf("logFilePath(%q) = %q, want %q", in, got, want)
		}
	}
}

// archives lists the rotated files next to the log file.
func archives(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "vigil-") && strings.HasSuffix(e.Name(), ".log") {
			out = append(out, e.Name())
		}
	}
	return out
}

// waitFor polls cond (lumberjack removes old archives in its own
// goroutine) until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestLogFileRotatesBySizeAndAge: log_rotate_bytes rotates once the file
// would pass the size (in whole MiB), the age tick rotates too, and
// log_rotate_max_files bounds the archives kept.
func TestLogFileRotatesBySizeAndAge(t *testing.T) {
	dir := t.TempDir()
	tick, rotated := make(chan time.Time), make(chan struct{}, 1)
	l, err := openLogFile(&config.Config{LogFile: dir + "/", LogRotateBytes: 1 << 20, LogRotateMaxFiles: 2}, tick,
		func() { rotated <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	line := append(bytes.Repeat([]byte("x"), 1023), '\n')
	for i := 0; i < 3*1024+10; i++ { // a little over 3 MiB: three rotations
		if _, err := l.Write(line); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "two archives", func() bool { return len(archives(t, dir)) == 2 })
	fi, err := os.Stat(filepath.Join(dir, "vigil.log"))
	if err != nil || fi.Size() > 1<<20 {
		t.Fatalf("active log: %v, size %d", err, fi.Size())
	}
	before := fi.Size()
	tick <- time.Now() // the age rotation
	<-rotated
	fi, err = os.Stat(filepath.Join(dir, "vigil.log"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != 0 || before == 0 {
		t.Fatalf("age rotation: active log is %d bytes (was %d)", fi.Size(), before)
	}
	waitFor(t, "max files after age rotation", func() bool { return len(archives(t, dir)) <= 2 })
}

// TestLogFileBadPath: a log_file that cannot be created fails at start.
func TestLogFileBadPath(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := openLogFile(&config.Config{LogFile: f + "/sub/vigil.log"}, nil, nil); err == nil {
		t.Fatal("a log_file under a regular file was accepted")
	}
}
