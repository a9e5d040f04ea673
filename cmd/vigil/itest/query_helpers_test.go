package itest

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/audit"
	"github.com/vigilsec/vigil/audit/auditsvc"
	"github.com/vigilsec/vigil/audit/ship"
	"github.com/vigilsec/vigil/cmd/vigil/wire"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/server"
	"github.com/vigilsec/vigil/core/server/servertest"
	"github.com/vigilsec/vigil/reports/query"
	"github.com/vigilsec/vigil/reports/query/querysvc"
)

// queryServer is a dev server with a file audit device and wire's audit,
// audit query and stream subsystems.
type queryServer struct {
	*servertest.Server
	mu    sync.Mutex
	audit *auditsvc.Subsystem
	query *querysvc.Subsystem
	ship  *ship.Subsystem
}

func (s *queryServer) Query() *querysvc.Subsystem {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.query
}

func (s *queryServer) Audit() *auditsvc.Subsystem {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.audit
}

func (s *queryServer) Ship() *ship.Subsystem {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ship
}

// builder is wire.OptionsWith the test's query tuning; it records the
// audit, query and stream subsystems wire lists.
func (s *queryServer) builder(qo querysvc.Options) servertest.Builder {
	return func(cfg *config.Config) (server.Options, error) {
		o, err := wire.OptionsWith(cfg, wire.Tuning{Query: qo})
		var as *auditsvc.Subsystem
		var qs *querysvc.Subsystem
		var shs *ship.Subsystem
		for _, sub := range o.Subsystems {
			switch x := sub.Subsystem.(type) {
			case *auditsvc.Subsystem:
				as = x
			case *querysvc.Subsystem:
				qs = x
			case *ship.Subsystem:
				shs = x
			}
		}
		if as == nil || qs == nil || shs == nil {
			return o, fmt.Errorf("wire lists no audit, query or stream subsystem")
		}
		s.mu.Lock()
		s.audit, s.query, s.ship = as, qs, shs
		s.mu.Unlock()
		return o, err
	}
}

// mustQueryServer starts the server. The file device checkpoints every
// 100ms so queries see recent traffic quickly.
func mustQueryServer(t testing.TB, dir string, deviceOpts map[string]string, streams []config.Block, qo querysvc.Options) *queryServer {
	t.Helper()
	opts := map[string]string{"checkpoint_interval": "100ms", "fsync": "interval"}
	for k, v := range deviceOpts {
		opts[k] = v
	}
	qs := &queryServer{}
	qs.Server = servertest.MustStart(t, qs.builder(qo), servertest.Options{Dev: true, Dir: dir, Configure: func(c *config.Config) {
		c.Audit = []config.Block{fileDevice(dir, opts)}
		c.AuditStreams = streams
	}})
	return qs
}

// head is the file device's durable head.
func (s *queryServer) head(t testing.TB) uint64 {
	t.Helper()
	d := s.Audit().Broker().Device("file")
	fs, ok := d.Sink().(*audit.FileSink)
	if !ok {
		t.Fatal("file device not open")
	}
	seq, _ := fs.W.Head()
	return seq
}

// checkpointNow writes a checkpoint on the file device (in process) and
// returns its seq: everything before it is covered.
func (s *queryServer) checkpointNow(t testing.TB) uint64 {
	t.Helper()
	fs := s.Audit().Broker().Device("file").Sink().(*audit.FileSink)
	cp, err := fs.W.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	return cp.Seq
}

func (s *queryServer) publicKey(t testing.TB) ed25519.PublicKey {
	t.Helper()
	k, ok := s.Audit().PublicKey()
	if !ok {
		t.Fatal("sealed")
	}
	return k
}

// apiQuery calls GET sys/audit/query with token and params and decodes
// the JSON result.
func apiQuery(t testing.TB, s *servertest.Server, token string, params url.Values) (*query.Result, error) {
	t.Helper()
	c := s.NewClient(token)
	sec, err := c.Logical().ReadWithDataWithContext(context.Background(), "sys/audit/query", params)
	if err != nil {
		return nil, err
	}
	if sec == nil {
		return nil, fmt.Errorf("no body")
	}
	var res query.Result
	b, _ := json.Marshal(sec.Data)
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// apiQueryAll follows the next cursor to the end.
func apiQueryAll(t testing.TB, s *servertest.Server, token string, params url.Values) *query.Result {
	t.Helper()
	var all *query.Result
	p := url.Values{}
	for k, v := range params {
		p[k] = v
	}
	for i := 0; ; i++ {
		res, err := apiQuery(t, s, token, p)
		if err != nil {
			t.Fatal(err)
		}
		if all == nil {
			all = res
		} else {
			all.Records = append(all.Records, res.Records...)
		}
		if res.Next == "" {
			return all
		}
		p.Set("after", res.Next)
		if i > 10000 {
			t.Fatal("paging does not end")
		}
	}
}

// rawQuery returns the status, headers and body of a query.
func rawQuery(t testing.TB, s *servertest.Server, token string, params url.Values) (int, http.Header, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/v1/sys/audit/query?"+params.Encode(), nil)
	req.Header.Set("X-Vault-Token", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// waitQueryCovers waits until a query's checkpoint covers seq.
func waitQueryCovers(t testing.TB, s *servertest.Server, seq uint64, timeout time.Duration) *query.Result {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		res, err := apiQuery(t, s, s.RootToken, url.Values{"limit": {"1"}})
		if err == nil && res.Checkpoint != nil && res.Checkpoint.Seq >= seq {
			return res
		}
		if time.Now().After(deadline) {
			t.Fatalf("query checkpoint does not cover seq %d: %+v %v", seq, res, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// userToken logs in with userpass and returns the token and accessor.
func userToken(t testing.TB, c *vaultapi.Client, name, password string) (token, accessor string) {
	t.Helper()
	sec, err := c.Logical().Write("auth/userpass/login/"+name, map[string]any{"password": password})
	if err != nil {
		t.Fatal(err)
	}
	return sec.Auth.ClientToken, sec.Auth.Accessor
}
