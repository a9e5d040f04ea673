package itest

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigilsec/vigil/audit"
	"github.com/vigilsec/vigil/audit/chain"
)

// vigilBinary returns the binary under test: $VIGIL_BIN (make test builds
// bin/vigil) or a fresh `go build ./cmd/vigil`.
func vigilBinary(t testing.TB) string {
	t.Helper()
	if b := os.Getenv("VIGIL_BIN"); b != "" {
		return b
	}
	out := filepath.Join(t.TempDir(), "vigil")
	cmd := exec.Command("go", "build", "-o", out, "github.com/vigilsec/vigil/cmd/vigil")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// devProcess is a `vigil server -dev` child process.
type devProcess struct {
	cmd *exec.Cmd
	url string
}

func startDev(t *testing.T, bin, dataDir string, logw io.Writer) *devProcess {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(bin, "server", "-dev", "-dev-data-dir", dataDir, "-dev-listen-address", addr, "-dev-root-token-id", "root")
	cmd.Stdout, cmd.Stderr = logw, logw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &devProcess{cmd: cmd, url: "http://" + addr}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(p.url + "/v1/sys/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("dev server did not become healthy: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A built binary under concurrent KV writes is SIGKILLed at random moments
// over several rounds. After each restart, every request answered 2xx has
// its request AND response entries in the log, and the chain verifies with
// the checkpoint key and the stored checkpoint. A torn final line (as a
// crash mid-write leaves it) is reported as a warning, not as tampering,
// and is cut away by the next start.
func TestAuditCrashSIGKILL(t *testing.T) {
	bin := vigilBinary(t)
	dataDir := t.TempDir()
	logPath := filepath.Join(dataDir, "audit", "audit.log")
	serverLog, err := os.Create(filepath.Join(t.TempDir(), "server.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer serverLog.Close()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	var mu sync.Mutex
	var acked []string
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	const rounds = 4
	for round := 0; round < rounds; round++ {
		p := startDev(t, bin, dataDir, serverLog)
		if _, err := os.Stat(logPath); err != nil {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
			t.Fatalf("the binary wrote no audit log at %s: is auditsvc.NewSubsystem wired in cmd/vigil/wire/wire.go? (%v)", logPath, err)
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for g := 0; g < 6; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					a := kvPut(hc, p.url, "root", fmt.Sprintf("r%d-g%d-%d", round, g, i), map[string]any{"v": i, "secret": "s"})
					if a.status >= 200 && a.status < 300 {
						mu.Lock()
						acked = append(acked, a.id)
						mu.Unlock()
					}
				}
			}()
		}
		time.Sleep(time.Duration(200+rng.IntN(1200)) * time.Millisecond)
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		_ = p.cmd.Wait()
		close(stop)
		wg.Wait()
		if round == 1 {
			f, err := os.OpenFile(logPath, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = f.WriteString(`{"time":"2026-01-01T00:00:00Z","type":"request","auth":{"client_tok`)
			f.Close()
			rep, err := chain.VerifyLog(context.Background(), logPath, chain.VerifyOptions{})
			if err != nil || !rep.OK {
				t.Fatalf("a torn final line was reported as tampering: %v %v", rep, err)
			}
			torn := false
			for _, w := range rep.Warnings {
				torn = torn || w.Kind == chain.WarnTornTail
			}
			if !torn {
				t.Fatalf("torn final line not recognised: %v", rep)
			}
		}
	}
	mu.Lock()
	n := len(acked)
	mu.Unlock()
	if n == 0 {
		t.Fatal("no request succeeded")
	}
	// A last start recovers the log; fetch the key and the stored checkpoint.
	p := startDev(t, bin, dataDir, serverLog)
	pub := fetchKey(t, p.url)
	cp := fetchCheckpoint(t, p.url)
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	_ = p.cmd.Wait()
	ids := byRequestID(readLog(t, logPath))
	for _, id := range acked {
		if !ids[id]["request"] || !ids[id]["response"] {
			t.Fatalf("request %s was answered 2xx but its entries are %v", id, ids[id])
		}
	}
	rep, err := chain.VerifyLog(context.Background(), logPath, chain.VerifyOptions{PublicKey: pub, Checkpoint: cp, NodeID: "dev-node"})
	if err != nil || !rep.OK {
		t.Fatalf("chain after %d crashes: %v %v", rounds, rep, err)
	}
	t.Logf("%d acknowledged writes over %d crashes; %s", n, rounds, rep)
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("X-Vault-Token", "root")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

func fetchKey(t *testing.T, url string) ed25519.PublicKey {
	var env struct {
		Data audit.PublicKey `json:"data"`
	}
	getJSON(t, url+"/v1/sys/audit/checkpoint-key", &env)
	raw, err := base64.StdEncoding.DecodeString(env.Data.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func fetchCheckpoint(t *testing.T, url string) *chain.Checkpoint {
	var env struct {
		Data audit.CheckpointJSON `json:"data"`
	}
	getJSON(t, url+"/v1/sys/audit/checkpoints/file", &env)
	cp, err := env.Data.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	return &cp
}
