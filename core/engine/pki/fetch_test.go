package pki

import (
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/core"
)

func TestFetchCertificates(t *testing.T) {
	root, inter := newPKIAt(t, "pki/"), newPKIAt(t, "pki_int/")
	rootPEM, intPEM := intermediateFlow(t, root, inter, "ec")
	webRole(t, inter, nil)
	leaf := must(t)(inter.Write("issue/web", map[string]any{"common_name": "a.example.com"})).Data
	serial := str(t, leaf, "serial_number")

	// cert/:serial accepts the colon and hyphen forms.
	for _, s := range []string{serial, strings.ReplaceAll(serial, ":", "-")} {
		d := must(t)(inter.Read("cert/"+s, nil)).Data
		if d["certificate"] != leaf["certificate"] || d["revocation_time"] != int64(0) || d["revocation_time_rfc3339"] != "" || d["issuer_id"] == "" {
			t.Errorf("cert/%s = %v", s, d)
		}
	}
	raw := must(t)(inter.Read("cert/"+serial+"/raw", nil)).Raw
	if c, err := x509.ParseCertificate(raw.Body); err != nil || raw.ContentType != ctDERCert || formatSerial(c.SerialNumber) != serial {
		t.Errorf("cert/:serial/raw: %v %q", err, raw.ContentType)
	}
	rawPEM := must(t)(inter.Read("cert/"+serial+"/raw/pem", nil)).Raw
	if strings.TrimSpace(string(rawPEM.Body)) != leaf["certificate"] {
		t.Errorf("cert/:serial/raw/pem = %q", rawPEM.Body)
	}

	// cert/ca and cert/ca_chain name the default issuer and its chain.
	if got := must(t)(inter.Read("cert/ca", nil)).Data["certificate"]; got != intPEM {
		t.Errorf("cert/ca = %v", got)
	}
	chain := must(t)(inter.Read("cert/ca_chain", nil)).Data
	if chain["certificate"] != intPEM+"\n"+rootPEM || len(stringsOf(t, chain["ca_chain"])) != 2 {
		t.Errorf("cert/ca_chain = %v", chain)
	}
	caChain := must(t)(inter.Read("ca_chain", nil)).Raw
	var blocks int
	for rest := caChain.Body; ; blocks++ {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
	}
	if blocks != 2 || caChain.ContentType != ctPEMChain {
		t.Errorf("ca_chain: %d certificates, %q", blocks, caChain.ContentType)
	}

	// The intermediate mount lists only what it issued (its own certificate
	// was signed, and is stored, by the root mount).
	keys := must(t)(inter.List("certs/")).Data["keys"].([]string)
	if len(keys) != 1 || keys[0] != serial {
		t.Errorf("certs/ = %v", keys)
	}
	if _, err := inter.Read("cert/not-hex", nil); core.CodeOf(err) != core.CodeInvalid {
		t.Errorf("malformed serial: %v", err)
	}
	if _, err := inter.Read("cert/ab:cd", nil); core.CodeOf(err) != core.CodeNotFound {
		t.Errorf("unknown serial: %v", err)
	}
}
