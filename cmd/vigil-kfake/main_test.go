package main

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	kgo "github.com/segmentio/kafka-go"
)

// TestBinary builds vigil-kfake, runs it with a data folder, produces to
// it with kafka-go, restarts it, and reads the message back.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "vigil-kfake")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	addr := "127.0.0.1:" + strconv.Itoa(port)
	data := filepath.Join(dir, "data")
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "-port", strconv.Itoa(port), "-data-dir", data, "-sync")
		out, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, _ := bufio.NewReader(out).ReadString('\n')
		if !strings.Contains(line, addr) {
			t.Fatalf("startup line %q", line)
		}
		return cmd
	}
	stop := func(cmd *exec.Cmd) {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}
	cmd := start()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w := &kgo.Writer{Addr: kgo.TCP(addr), Topic: "t", RequiredAcks: kgo.RequireAll, AllowAutoTopicCreation: true}
	for {
		err := w.WriteMessages(ctx, kgo.Message{Key: []byte("k"), Value: []byte("hello")})
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	w.Close()
	stop(cmd)
	cmd = start()
	defer stop(cmd)
	conn, err := kgo.DialLeader(ctx, "tcp", addr, "t", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	m, err := conn.ReadMessage(1 << 20)
	if err != nil || string(m.Value) != "hello" {
		t.Fatalf("after restart: %q %v", m.Value, err)
	}
}
