package kafka

import (
	"testing"

	"github.com/vigilsec/vigil/audit/auditsvc"
	"github.com/vigilsec/vigil/core/config"
)

// TestDeployConfigAuditBlocks keeps the audit and stream blocks of the
// shipped example configuration valid.
func TestDeployConfigAuditBlocks(t *testing.T) {
	c, err := config.Load("../../../deploy/vigil.hcl")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range c.Audit {
		if _, err := auditsvc.FromBlock(b); err != nil {
			t.Errorf("audit %q: %v", b.Name, err)
		}
	}
	if _, err := auditsvc.ParseSettings(c.AuditSettings); err != nil {
		t.Errorf("audit_settings: %v", err)
	}
	for _, b := range c.AuditStreams {
		if b.Type != "kafka" {
			continue
		}
		if _, err := ParseBlock(b); err != nil {
			t.Errorf("audit_stream %q: %v", b.Name, err)
		}
	}
}
