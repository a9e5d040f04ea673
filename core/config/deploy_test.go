package config

import (
	"os"
	"strings"
	"testing"
)

// TestDeployConfigsParse keeps the shipped example configurations valid.
func TestDeployConfigsParse(t *testing.T) {
	c, err := Load("../../deploy/vigil.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Audit) != 2 || len(c.AuditStreams) != 1 || c.Storage == nil || c.Listeners[0].TLSDisable {
		t.Fatalf("deploy/vigil.hcl: %+v", c)
	}
	// The config embedded in the Kubernetes manifest.
	b, err := os.ReadFile("../../deploy/kubernetes/vigil.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	start := strings.Index(s, "vigil.hcl: |\n")
	end := strings.Index(s, "\n---")
	if start < 0 || end < start {
		t.Fatal("no embedded vigil.hcl in the manifest")
	}
	var body strings.Builder
	for _, line := range strings.Split(s[start+len("vigil.hcl: |\n"):end], "\n") {
		body.WriteString(strings.TrimPrefix(line, "    "))
		body.WriteByte('\n')
	}
	kc, err := Parse("k8s.hcl", []byte(body.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(kc.Audit) != 2 || kc.Telemetry == nil {
		t.Fatalf("manifest config: %+v", kc)
	}
}
