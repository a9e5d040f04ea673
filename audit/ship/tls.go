package ship

import (
	"crypto/tls"
	"crypto/x509"
	"os"

	"github.com/vigilsec/vigil/core/config"
)

// TLSConfig reads a stream's TLS options: tls (on), tls_ca_file,
// tls_cert_file and tls_key_file (a client certificate), tls_server_name,
// tls_skip_verify. nil when none is set. Errors name the key.
func TLSConfig(b config.Block) (*tls.Config, error) {
	on, err := BoolOption(b, "tls", false)
	if err != nil {
		return nil, err
	}
	ca, cert, key := StringOption(b, "tls_ca_file", ""), StringOption(b, "tls_cert_file", ""), StringOption(b, "tls_key_file", "")
	skip, err := BoolOption(b, "tls_skip_verify", false)
	if err != nil {
		return nil, err
	}
	if !on && ca == "" && cert == "" && !skip {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: StringOption(b, "tls_server_name", ""), InsecureSkipVerify: skip} //nolint:gosec // operator's explicit choice
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, Errorf(b, "tls_ca_file", "%v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, Errorf(b, "tls_ca_file", "no PEM certificates in %s", ca)
		}
		tc.RootCAs = pool
	}
	if cert != "" || key != "" {
		kp, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, Errorf(b, "tls_cert_file", "%v", err)
		}
		tc.Certificates = []tls.Certificate{kp}
	}
	return tc, nil
}
