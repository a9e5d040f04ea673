package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Listener is one listener "tcp" stanza.
type Listener struct {
	Type    string
	Address string
	// ClusterAddress is where this listener's node accepts cluster traffic.
	ClusterAddress string
	TLSCertFile    string
	TLSKeyFile     string
	TLSDisable     bool
	// TLSMinVersion and TLSMaxVersion are Vault's names: tls10 ... tls13
	// (defaults tls12 and tls13).
	TLSMinVersion, TLSMaxVersion string
	// TLSCipherSuites are IANA names of TLS 1.2 suites (empty: Go's list).
	TLSCipherSuites []string
	// TLSClientCAFile holds the CAs client certificates are verified with.
	TLSClientCAFile string
	// TLSRequireAndVerifyClientCert refuses connections without a client
	// certificate signed by TLSClientCAFile.
	TLSRequireAndVerifyClientCert bool
	// TLSDisableClientCerts never asks clients for a certificate.
	TLSDisableClientCerts bool
	// MaxRequestSize in bytes (0: default 32 MiB).
	MaxRequestSize int64
	// HTTP timeouts (Vault's http_*_timeout keys). Zero means the server's
	// default; a negative value (written "0" in the file) turns the limit
	// off, as in Vault. http_read_header_timeout cannot be turned off.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	// UnauthenticatedMetricsAccess is the listener's telemetry block
	// setting of that name: sys/metrics is served without a token.
	UnauthenticatedMetricsAccess bool
	Line                         int
	File                         string
}

var tlsVersions = map[string]uint16{"tls10": tls.VersionTLS10, "tls11": tls.VersionTLS11, "tls12": tls.VersionTLS12, "tls13": tls.VersionTLS13}

// listenerTelemetry are the keys of a listener's telemetry block.
var listenerTelemetryRefused = map[string]string{
	"disallow_metrics": "sys/metrics would still be served on this listener",
	"metrics_only":     "this listener would serve the whole API, not only metrics",
}

func (p *parser) listeners(it item) error {
	bs, err := blocksOf(p.file, it, 1)
	if err != nil {
		return err
	}
	for _, b := range bs {
		pos := where(p.file, b.pos)
		switch b.labels[0] {
		case "tcp":
		case "unix":
			p.warn(pos, "listener \"unix\" is not implemented and is ignored: only tcp listeners are served")
			continue
		default:
			return fmt.Errorf("config: %s: unsupported listener type %q (only \"tcp\")", pos, b.labels[0])
		}
		l, err := p.listener(b)
		if err != nil {
			return err
		}
		p.c.Listeners = append(p.c.Listeners, l)
	}
	return nil
}

func (p *parser) listener(b block) (Listener, error) {
	l := Listener{Type: "tcp", Line: b.pos.Line, File: p.file}
	ctx := "listener \"tcp\""
	seen := map[string]bool{}
	for _, it := range b.body {
		pos := where(p.file, it.pos)
		if seen[it.name] {
			return l, fmt.Errorf("config: %s: %s: %s is set twice", pos, ctx, it.name)
		}
		seen[it.name] = true
		if it.name == "telemetry" {
			if err := p.listenerTelemetry(&l, it); err != nil {
				return l, err
			}
			continue
		}
		if why, ok := ignoredListener[it.name]; ok {
			p.ignored(pos, ctx, it.name, why)
			continue
		}
		v, err := scalar(p.file, it)
		if err != nil {
			return l, err
		}
		if why, ok := refusedTrue[it.name]; ok {
			on := v.IsList && len(v.List) > 0 || !v.IsList && v.Value != ""
			if b, err := v.Bool(); err == nil {
				on = b
			}
			if on {
				return l, fmt.Errorf("config: %s: %s: %s is not implemented; refusing to start because %s", pos, ctx, it.name, why)
			}
			continue
		}
		if implementedTrivially[it.name] {
			continue
		}
		if err := l.set(it.name, v); err != nil {
			return l, err
		}
	}
	if l.Address == "" {
		l.Address = "127.0.0.1:8200"
	}
	return l, l.validate()
}

// set applies one implemented key.
func (l *Listener) set(key string, v Value) error {
	boolean := func(dst *bool) error {
		b, err := v.Bool()
		*dst = b
		return err
	}
	switch key {
	case "address":
		l.Address = v.Value
	case "cluster_address":
		l.ClusterAddress = v.Value
	case "tls_cert_file":
		l.TLSCertFile = v.Value
	case "tls_key_file":
		l.TLSKeyFile = v.Value
	case "tls_client_ca_file":
		l.TLSClientCAFile = v.Value
	case "tls_disable":
		return boolean(&l.TLSDisable)
	case "tls_require_and_verify_client_cert":
		return boolean(&l.TLSRequireAndVerifyClientCert)
	case "tls_disable_client_certs":
		return boolean(&l.TLSDisableClientCerts)
	case "tls_min_version", "tls_max_version":
		if _, ok := tlsVersions[v.Value]; !ok {
			return fmt.Errorf("config: %s: %s %q: expected tls10, tls11, tls12 or tls13", v.Where(), key, v.Value)
		}
		if key == "tls_min_version" {
			l.TLSMinVersion = v.Value
		} else {
			l.TLSMaxVersion = v.Value
		}
	case "tls_cipher_suites":
		names := v.List
		if !v.IsList {
			names = strings.Split(v.Value, ",")
		}
		for _, n := range names {
			if n = strings.TrimSpace(n); n == "" {
				continue
			}
			if _, ok := cipherSuite(n); !ok {
				return fmt.Errorf("config: %s: tls_cipher_suites: unknown or insecure cipher suite %q", v.Where(), n)
			}
			l.TLSCipherSuites = append(l.TLSCipherSuites, n)
		}
	case "http_read_header_timeout", "http_read_timeout", "http_write_timeout", "http_idle_timeout":
		d, err := ParseDuration(v.Value)
		if err != nil {
			return fmt.Errorf("config: %s: %s: %w", v.Where(), key, err)
		}
		if d == 0 {
			if key == "http_read_header_timeout" {
				return fmt.Errorf("config: %s: http_read_header_timeout cannot be 0: a client could hold a connection forever without sending a request", v.Where())
			}
			d = -1 // "0" in the file: no limit
		}
		*map[string]*time.Duration{"http_read_header_timeout": &l.ReadHeaderTimeout, "http_read_timeout": &l.ReadTimeout,
			"http_write_timeout": &l.WriteTimeout, "http_idle_timeout": &l.IdleTimeout}[key] = d
	case "max_request_size":
		n, err := strconv.ParseInt(v.Value, 10, 64)
		if err != nil {
			return fmt.Errorf("config: %s: max_request_size: expected a number of bytes, got %q", v.Where(), v.Value)
		}
		l.MaxRequestSize = n
	default:
		return fmt.Errorf("config: %s: unknown key %q in listener \"tcp\" block", v.Where(), key)
	}
	return nil
}

func (p *parser) listenerTelemetry(l *Listener, it item) error {
	bs, err := blocksOf(p.file, it, 0)
	if err != nil {
		return err
	}
	for _, b := range bs {
		for _, child := range b.body {
			v, err := scalar(p.file, child)
			if err != nil {
				return err
			}
			switch child.name {
			case "unauthenticated_metrics_access":
				if l.UnauthenticatedMetricsAccess, err = v.Bool(); err != nil {
					return err
				}
			case "metrics_path":
				p.ignored(v.Where(), "listener telemetry", child.name, "metrics are served at /v1/sys/metrics")
			default:
				why, ok := listenerTelemetryRefused[child.name]
				if !ok {
					return fmt.Errorf("config: %s: unknown key %q in listener telemetry block", v.Where(), child.name)
				}
				if on, err := v.Bool(); err != nil {
					return err
				} else if on {
					return fmt.Errorf("config: %s: listener telemetry: %s is not implemented; refusing to start because %s", v.Where(), child.name, why)
				}
			}
		}
	}
	return nil
}

// validate checks the combinations of settings that are wrong whatever the
// files hold. Missing certificate files are found when the listener starts
// (TLSConfig), as in Vault.
func (l *Listener) validate() error {
	where := fmt.Sprintf("%s:%d", l.File, l.Line)
	if l.TLSDisable {
		if l.TLSRequireAndVerifyClientCert {
			return fmt.Errorf("config: %s: listener %q: tls_require_and_verify_client_cert needs TLS (tls_disable is true)", where, l.Address)
		}
		return nil
	}
	if l.TLSRequireAndVerifyClientCert && l.TLSDisableClientCerts {
		return fmt.Errorf("config: %s: listener %q: tls_require_and_verify_client_cert and tls_disable_client_certs are mutually exclusive", where, l.Address)
	}
	if l.TLSRequireAndVerifyClientCert && l.TLSClientCAFile == "" {
		return fmt.Errorf("config: %s: listener %q: tls_require_and_verify_client_cert needs tls_client_ca_file", where, l.Address)
	}
	if l.TLSMinVersion != "" && l.TLSMaxVersion != "" && tlsVersions[l.TLSMinVersion] > tlsVersions[l.TLSMaxVersion] {
		return fmt.Errorf("config: %s: listener %q: tls_min_version is above tls_max_version", where, l.Address)
	}
	return nil
}

// cipherSuite looks a suite up by its IANA name among Go's secure suites.
func cipherSuite(name string) (uint16, bool) {
	for _, s := range tls.CipherSuites() {
		if s.Name == name {
			return s.ID, true
		}
	}
	return 0, false
}

// TLSConfig builds the listener's server TLS configuration: its certificate,
// versions (default TLS 1.2 to 1.3), cipher suites and client certificate
// policy. It returns nil for a listener with tls_disable. Errors name the
// file that could not be used.
func (l Listener) TLSConfig() (*tls.Config, error) {
	if l.TLSDisable {
		return nil, nil
	}
	if err := l.validate(); err != nil {
		return nil, err
	}
	if l.TLSCertFile == "" || l.TLSKeyFile == "" {
		// As in Vault, a TLS listener without a certificate loads but
		// cannot start.
		return nil, fmt.Errorf("listener %s: tls_cert_file and tls_key_file are required unless tls_disable = true", l.Address)
	}
	cert, err := tls.LoadX509KeyPair(l.TLSCertFile, l.TLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("listener %s: tls_cert_file/tls_key_file: %w", l.Address, err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS13}
	if l.TLSMinVersion != "" {
		cfg.MinVersion = tlsVersions[l.TLSMinVersion]
	}
	if l.TLSMaxVersion != "" {
		cfg.MaxVersion = tlsVersions[l.TLSMaxVersion]
	}
	for _, n := range l.TLSCipherSuites {
		id, ok := cipherSuite(n)
		if !ok {
			return nil, fmt.Errorf("listener %s: unknown cipher suite %q", l.Address, n)
		}
		cfg.CipherSuites = append(cfg.CipherSuites, id)
	}
	if !l.TLSDisableClientCerts {
		// As in Vault, a client certificate is asked for but, without
		// tls_client_ca_file, neither required nor verified here: the cert
		// auth method verifies it against its own CAs.
		cfg.ClientAuth = tls.RequestClientCert
	}
	if l.TLSClientCAFile != "" && !l.TLSDisableClientCerts {
		pemCAs, err := os.ReadFile(l.TLSClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("listener %s: tls_client_ca_file: %w", l.Address, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemCAs) {
			return nil, fmt.Errorf("listener %s: tls_client_ca_file %s holds no PEM certificate", l.Address, l.TLSClientCAFile)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	}
	if l.TLSRequireAndVerifyClientCert {
		if cfg.ClientCAs == nil {
			return nil, errors.New("listener " + l.Address + ": tls_require_and_verify_client_cert needs tls_client_ca_file")
		}
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}
