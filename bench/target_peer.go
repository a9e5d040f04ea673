package bench

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Peer kinds.
var peerKinds = []string{"vault", "openbao", "vigil"}

// PeerTarget starts a Vault, OpenBao (or, as an A/A check, Vigil) binary
// the way an operator runs it: `server -config` with raft storage in a
// temporary folder, initialised (one key share) and unsealed through the
// API, a file audit device on the same disk as Vigil's, and KV v2 at
// secret/ — the same shape as `vigil server -dev`. The audit device is
// declared in the configuration for OpenBao 2.4 and later (whose API
// refuses to create audit devices) and enabled through the API otherwise;
// the release is read from `<bin> version` before the start.
type PeerTarget struct {
	Bin      string
	Kind     string // vault, openbao or vigil
	Dir      string
	Keep     bool
	AuditTag bool

	tmp   string
	url   string
	token string
	proc  *process
	info  ArmInfo
}

// ArmName is how the arm is labelled in reports.
func (t *PeerTarget) ArmName() string { return t.Kind + " (peer) audit=file" }

// Start implements Target.
func (t *PeerTarget) Start(ctx context.Context) error {
	t.info = ArmInfo{Name: t.ArmName(), Kind: t.Kind, Audit: "file", Binary: t.Bin}
	ok := false
	for _, k := range peerKinds {
		ok = ok || k == t.Kind
	}
	if !ok {
		return fmt.Errorf("unknown --peer-kind %q (want %s)", t.Kind, strings.Join(peerKinds, ", "))
	}
	tmp, err := os.MkdirTemp(t.Dir, "vigil-bench-peer-"+t.Kind+"-")
	if err != nil {
		return err
	}
	t.tmp = tmp
	port, err := freePort()
	if err != nil {
		return err
	}
	cport, err := freePort()
	if err != nil {
		return err
	}
	t.url = fmt.Sprintf("http://127.0.0.1:%d", port)
	raftDir := filepath.Join(tmp, "raft")
	if err := os.MkdirAll(raftDir, 0o700); err != nil {
		return err
	}
	rel, err := peerReleaseOf(ctx, t.Bin)
	if err != nil {
		return err
	}
	mode := auditModeFor(t.Kind, rel)
	auditLog := filepath.Join(tmp, "audit", "audit.log")
	if err := os.MkdirAll(filepath.Dir(auditLog), 0o700); err != nil {
		return err
	}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "storage \"raft\" {\n  path    = %q\n  node_id = \"bench-peer\"\n}\n", raftDir)
	fmt.Fprintf(&cfg, "listener \"tcp\" {\n  address     = \"127.0.0.1:%d\"\n  tls_disable = true\n}\n", port)
	fmt.Fprintf(&cfg, "api_addr      = %q\ncluster_addr  = \"http://127.0.0.1:%d\"\ndisable_mlock = true\n", t.url, cport)
	cfg.WriteString(peerAuditConfig(mode, auditLog))
	if t.Kind == "vigil" && t.AuditTag {
		fmt.Fprintf(&cfg, "audit_settings {\n  request_headers = [%q]\n}\n", TagHeader)
	}
	cfgPath := filepath.Join(tmp, "peer.hcl")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o600); err != nil {
		return err
	}
	args := []string{"server", "-config", cfgPath}
	t.info.Args, t.info.DataDir, t.info.Addr, t.info.Config = args, raftDir, t.url, cfg.String()
	proc, err := startProcess(t.Bin, args, filepath.Join(tmp, "server.log"), []string{"VAULT_DISABLE_USER_LOCKOUT=true"})
	if err != nil {
		return err
	}
	t.proc = proc
	api := &API{Base: t.url, Tag: "setup", HTTP: &http.Client{Transport: newTransport(4, false), Timeout: 60 * time.Second}}
	// Any answer from sys/health means the listener is up (501: not initialised).
	if err := waitHTTP(ctx, api, proc, "sys/health", 60*time.Second, func(s int) bool { return s > 0 }); err != nil {
		return fmt.Errorf("%s: %w", t.ArmName(), err)
	}
	init, err := api.DoNoToken(ctx, "PUT", "sys/init", map[string]any{"secret_shares": 1, "secret_threshold": 1})
	if err != nil {
		return fmt.Errorf("%s: init: %w", t.ArmName(), err)
	}
	t.token, _ = init["root_token"].(string)
	keys, _ := init["keys_base64"].([]any)
	if len(keys) == 0 {
		keys, _ = init["keys"].([]any)
	}
	if t.token == "" || len(keys) == 0 {
		return fmt.Errorf("%s: init answered no root token or key", t.ArmName())
	}
	key, _ := keys[0].(string)
	if _, err := api.DoNoToken(ctx, "PUT", "sys/unseal", map[string]any{"key": key}); err != nil {
		return fmt.Errorf("%s: unseal: %w", t.ArmName(), err)
	}
	// 200 = initialised, unsealed and active (raft has elected this node).
	if err := waitHTTP(ctx, api, proc, "sys/health", 60*time.Second, func(s int) bool { return s == 200 }); err != nil {
		return fmt.Errorf("%s: wait for active: %w", t.ArmName(), err)
	}
	api.Token = t.token
	t.info.Version = serverVersion(ctx, api)
	if mode == auditDeclarative {
		// The active node creates declared devices after unseal.
		if err := waitAuditDevice(ctx, api, 60*time.Second); err != nil {
			return fmt.Errorf("%s: declared file audit device: %w", t.ArmName(), err)
		}
		t.info.Notes = append(t.info.Notes, rel.Raw+": file audit device declared in the configuration")
	} else if _, err := api.Do(ctx, "PUT", "sys/audit/file", map[string]any{"type": "file",
		"options": map[string]any{"file_path": auditLog}}); err != nil {
		return fmt.Errorf("%s: enable file audit device: %w", t.ArmName(), err)
	}
	t.info.AuditLog = auditLog
	if t.AuditTag && t.Kind != "vigil" {
		// Vault's API for recorded request headers; best effort.
		if _, err := api.Do(ctx, "PUT", "sys/config/auditing/request-headers/"+TagHeader, map[string]any{"hmac": false}); err != nil {
			t.info.Notes = append(t.info.Notes, "could not record "+TagHeader+" in the audit log: "+err.Error())
		}
	}
	if _, err := api.Do(ctx, "POST", "sys/mounts/secret", map[string]any{"type": "kv", "options": map[string]any{"version": "2"}}); err != nil {
		t.info.Notes = append(t.info.Notes, "mount KV v2 at secret/: "+err.Error())
	}
	if devs, err := auditDevices(ctx, api); err == nil {
		t.info.Devices = devs
	}
	return nil
}

// Stop implements Target.
func (t *PeerTarget) Stop(ctx context.Context) error {
	var err error
	if t.proc != nil {
		err = t.proc.stop(30 * time.Second)
	}
	if t.tmp != "" && !t.Keep {
		if rerr := os.RemoveAll(t.tmp); rerr != nil && err == nil {
			err = rerr
		}
	}
	return err
}

func (t *PeerTarget) URL() string   { return t.url }
func (t *PeerTarget) Token() string { return t.token }
func (t *PeerTarget) PID() int {
	if t.proc == nil {
		return 0
	}
	return t.proc.PID()
}
func (t *PeerTarget) Info() ArmInfo { return t.info }

// VigilMetrics: a Vigil peer serves them; Vault and OpenBao do not.
func (t *PeerTarget) VigilMetrics() bool { return t.Kind == "vigil" }
func (t *PeerTarget) Streams() []string  { return nil }

// waitAuditDevice waits until sys/audit lists a device.
func waitAuditDevice(ctx context.Context, api *API, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		devs, err := auditDevices(ctx, api)
		if err == nil && len(devs) > 0 {
			return nil
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("no audit device listed after %v", timeout)
			}
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
