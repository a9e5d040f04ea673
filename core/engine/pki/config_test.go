package pki

import (
	"reflect"
	"testing"

	"github.com/vigilsec/vigil/core"
)

func TestConfigURLs(t *testing.T) {
	c := newPKI(t)
	d := must(t)(c.Read("config/urls", nil)).Data
	if !reflect.DeepEqual(d["ocsp_servers"], []string{}) || !reflect.DeepEqual(d["issuing_certificates"], []string{}) {
		t.Errorf("empty config/urls %v", d)
	}
	must(t)(c.Write("config/urls", map[string]any{"issuing_certificates": []any{"https://ca.test/v1/pki/ca"}}))
	must(t)(c.Write("config/urls", map[string]any{"ocsp_servers": "https://ca.test/v1/pki/ocsp"}))
	d = must(t)(c.Read("config/urls", nil)).Data
	if !reflect.DeepEqual(d["issuing_certificates"], []string{"https://ca.test/v1/pki/ca"}) ||
		!reflect.DeepEqual(d["ocsp_servers"], []string{"https://ca.test/v1/pki/ocsp"}) ||
		!reflect.DeepEqual(d["crl_distribution_points"], []string{}) {
		t.Errorf("config/urls %v", d)
	}
	for _, bad := range []map[string]any{
		{"crl_distribution_points": "not a url"},
		{"ocsp_servers": "/relative/path"},
		{"enable_templating": true},
	} {
		if _, err := c.Write("config/urls", bad); core.CodeOf(err) != core.CodeInvalid {
			t.Errorf("config/urls %v: %v", bad, err)
		}
	}
	// Self-signed roots carry no AIA; what the mount signs does.
	root := parseCert(t, str(t, genRoot(t, c, nil), "certificate"))
	if len(root.OCSPServer)+len(root.IssuingCertificateURL) != 0 {
		t.Errorf("root has AIA %v %v", root.OCSPServer, root.IssuingCertificateURL)
	}
}
