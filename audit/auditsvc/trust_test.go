package auditsvc

import (
	"strings"
	"testing"

	"github.com/vigilsec/vigil/core/config"
)

func TestParseWitness(t *testing.T) {
	src := `
audit_witness "http" {
  url     = "https://vigil-b.example.com/v1/sys/audit/witness/{node}/{device}"
  name    = "vigil-b"
  token   = "s.abc"
  header  = ["X-Team: audit"]
  timeout = "3s"
}
`
	c, err := config.Parse("w.hcl", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.AuditWitnesses) != 1 {
		t.Fatalf("witness blocks: %v", c.AuditWitnesses)
	}
	w, err := ParseWitness(c.AuditWitnesses[0])
	if err != nil {
		t.Fatal(err)
	}
	if w.Name != "vigil-b" || w.Header.Get("X-Vault-Token") != "s.abc" || w.Header.Get("X-Team") != "audit" || w.Client.Timeout.Seconds() != 3 ||
		w.URLFor("node-1", "file") != "https://vigil-b.example.com/v1/sys/audit/witness/node-1/file" {
		t.Fatalf("parsed %+v", w)
	}
	for in, want := range map[string]string{
		`audit_witness "s3" { url = "https://x" }`:                               `unknown audit_witness type "s3"`,
		`audit_witness "http" { url = "ftp://x" }`:                               "must be an http:// or https:// URL",
		"audit_witness \"http\" {\n url = \"https://x\"\n colour = \"red\"\n}":   `"colour"`,
		"audit_witness \"http\" {\n url = \"https://x\"\n timeout = \"soon\"\n}": "expected a duration",
	} {
		c, err := config.Parse("w.hcl", []byte(in))
		if err == nil {
			_, err = ParseWitness(c.AuditWitnesses[0])
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", in, err, want)
		}
	}
}
