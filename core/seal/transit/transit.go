// Package transit is the "transit" seal: the root key is encrypted by the
// transit secrets engine of another Vigil (or any Vault-API server), through
// github.com/hashicorp/vault/api.
//
//	seal "transit" {
//	  address    = "https://vigil-kms.example.com:8200"   # or VAULT_ADDR
//	  token      = "..."                                  # or VAULT_TOKEN
//	  key_name   = "autounseal"
//	  mount_path = "transit/"
//	  tls_ca_cert = "/etc/vigil/kms-ca.pem"
//	}
//
// Calls are retried (connection errors and 5xx, with backoff) and bounded
// in time. An unsealed server does not need the transit server, so a brief
// outage only shows in the seal health; a server that starts during one
// keeps retrying and unseals when the transit server is back. The token is
// renewed in the background unless disable_renewal is set.
package transit

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/core/seal"
)

// Type is the seal type.
const Type = "transit"

const callTimeout = 20 * time.Second

// Seal wraps with a transit key. Safe for concurrent use.
type Seal struct {
	client  *vaultapi.Client
	mount   string
	keyName string

	stopOnce sync.Once
	stop     chan struct{}
}

var _ seal.Seal = (*Seal)(nil)

// Factory builds the seal from a config block (seal.Factory). It does not
// contact the transit server.
func Factory(_ context.Context, o seal.Options) (seal.Seal, error) {
	if err := o.Known("address", "token", "key_name", "mount_path", "namespace", "disable_renewal",
		"tls_ca_cert", "tls_client_cert", "tls_client_key", "tls_server_name", "tls_skip_verify"); err != nil {
		return nil, err
	}
	addr, err := o.Require("address", "VAULT_ADDR")
	if err != nil {
		return nil, err
	}
	token, err := o.Require("token", "VAULT_TOKEN")
	if err != nil {
		return nil, err
	}
	keyName, err := o.Require("key_name", "VAULT_TRANSIT_SEAL_KEY_NAME")
	if err != nil {
		return nil, err
	}
	mount := strings.Trim(o.Get("mount_path", "VAULT_TRANSIT_SEAL_MOUNT_PATH"), "/")
	if mount == "" {
		return nil, o.Errorf("mount_path is required (or VAULT_TRANSIT_SEAL_MOUNT_PATH)")
	}
	skip, err := o.Bool("tls_skip_verify", false, "VAULT_SKIP_VERIFY")
	if err != nil {
		return nil, err
	}
	noRenew, err := o.Bool("disable_renewal", false)
	if err != nil {
		return nil, err
	}
	cfg := vaultapi.DefaultConfig()
	cfg.Address = addr
	cfg.MaxRetries = 2
	cfg.MinRetryWait = 200 * time.Millisecond
	cfg.MaxRetryWait = 2 * time.Second
	cfg.Timeout = callTimeout
	if ca, cc, ck, sn := o.Get("tls_ca_cert", "VAULT_CACERT"), o.Get("tls_client_cert", "VAULT_CLIENT_CERT"), o.Get("tls_client_key", "VAULT_CLIENT_KEY"), o.Get("tls_server_name", "VAULT_TLS_SERVER_NAME"); ca != "" || cc != "" || ck != "" || sn != "" || skip {
		if err := cfg.ConfigureTLS(&vaultapi.TLSConfig{CACert: ca, ClientCert: cc, ClientKey: ck, TLSServerName: sn, Insecure: skip}); err != nil {
			return nil, o.Errorf("TLS: %v", err)
		}
	}
	client, err := vaultapi.NewClient(cfg)
	if err != nil {
		return nil, o.Errorf("client: %v", err)
	}
	client.SetToken(token)
	if ns := o.Get("namespace", "VAULT_NAMESPACE"); ns != "" {
		client.SetNamespace(ns)
	}
	s := &Seal{client: client, mount: mount, keyName: keyName, stop: make(chan struct{})}
	if !noRenew {
		go s.renew()
	}
	return s, nil
}

// Type implements seal.Seal.
func (s *Seal) Type() string { return Type }

func (s *Seal) where() string {
	return fmt.Sprintf("%s key %q at %s", s.mount, s.keyName, s.client.Address())
}

// Wrap implements seal.Seal: the blob is the transit ciphertext ("vault:v1:...").
func (s *Seal) Wrap(ctx context.Context, plaintext []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	sec, err := s.client.Logical().WriteWithContext(ctx, s.mount+"/encrypt/"+s.keyName,
		map[string]any{"plaintext": base64.StdEncoding.EncodeToString(plaintext)})
	if err != nil {
		return nil, fmt.Errorf("%s: encrypt: %w", s.where(), flat(err))
	}
	var ct string
	if sec != nil {
		ct, _ = sec.Data["ciphertext"].(string)
	}
	if ct == "" {
		return nil, fmt.Errorf("%s: encrypt: no ciphertext in the response", s.where())
	}
	return []byte(ct), nil
}

// Unwrap implements seal.Seal.
func (s *Seal) Unwrap(ctx context.Context, blob []byte) ([]byte, error) {
	if !strings.HasPrefix(string(blob), "vault:v") {
		return nil, errors.New("the wrapped key is not a transit ciphertext")
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	sec, err := s.client.Logical().WriteWithContext(ctx, s.mount+"/decrypt/"+s.keyName, map[string]any{"ciphertext": string(blob)})
	if err != nil {
		return nil, fmt.Errorf("%s: decrypt: %w", s.where(), flat(err))
	}
	var pt string
	if sec != nil {
		pt, _ = sec.Data["plaintext"].(string)
	}
	out, err := base64.StdEncoding.DecodeString(pt)
	if err != nil || sec == nil {
		return nil, fmt.Errorf("%s: decrypt: malformed plaintext in the response", s.where())
	}
	return out, nil
}

// Health implements seal.Seal: the key must encrypt.
func (s *Seal) Health(ctx context.Context) error {
	_, err := s.Wrap(ctx, []byte("health"))
	return err
}

// flat turns vault/api's multi-line response errors into one line.
func flat(err error) error {
	var re *vaultapi.ResponseError
	if errors.As(err, &re) {
		return fmt.Errorf("HTTP %d: %s", re.StatusCode, strings.Join(re.Errors, "; "))
	}
	return err
}

// renew keeps a renewable token alive: it renews at half its TTL.
func (s *Seal) renew() {
	wait := time.Minute
	for {
		select {
		case <-s.stop:
			return
		case <-time.After(wait):
		}
		sec, err := s.client.Auth().Token().RenewSelf(0)
		wait = time.Minute
		if err == nil && sec != nil && sec.Auth != nil && sec.Auth.LeaseDuration > 0 {
			wait = max(time.Duration(sec.Auth.LeaseDuration)*time.Second/2, 10*time.Second)
		}
	}
}

// Close stops token renewal.
func (s *Seal) Close() error {
	s.stopOnce.Do(func() { close(s.stop) })
	return nil
}
