package config

import (
	"strings"
	"testing"
	"time"
)

const full = `
storage "raft" {
  path    = "/var/lib/vigil"
  node_id = "node1"
}
listener "tcp" {
  address     = "0.0.0.0:8200"
  tls_disable = true
}
api_addr          = "http://10.0.0.1:8200"
cluster_addr      = "https://10.0.0.1:8201"
ui                = true
log_level         = "debug"
default_lease_ttl = "1h"
max_lease_ttl     = "7d"
token_default_ttl = 1800
disable_mlock     = true
audit "file" "primary" {
  path  = "/var/log/vigil/audit.log"
  fsync = "always"
}
audit_stream "kafka" "siem" {
  brokers = ["k1:9092", "k2:9092"]
  topic   = "vigil-audit"
}
audit_settings {
  allow_api_changes = false
}
`

func TestParseFull(t *testing.T) {
	c, err := Parse("vigil.hcl", []byte(full))
	if err != nil {
		t.Fatal(err)
	}
	if c.Storage.Path != "/var/lib/vigil" || c.Storage.NodeID != "node1" {
		t.Fatalf("storage: %+v", c.Storage)
	}
	if len(c.Listeners) != 1 || c.Listeners[0].Address != "0.0.0.0:8200" || !c.Listeners[0].TLSDisable {
		t.Fatalf("listener: %+v", c.Listeners)
	}
	if !c.UI || c.LogLevel != "debug" || c.APIAddr != "http://10.0.0.1:8200" || !c.DisableMlock {
		t.Fatalf("top level: %+v", c)
	}
	if c.DefaultLeaseTTL != time.Hour || c.MaxLeaseTTL != 7*24*time.Hour || c.TokenDefaultTTL != 30*time.Minute {
		t.Fatalf("durations: %v %v %v", c.DefaultLeaseTTL, c.MaxLeaseTTL, c.TokenDefaultTTL)
	}
	if len(c.Audit) != 1 || c.Audit[0].Name != "primary" || c.Audit[0].Options["fsync"].Value != "always" {
		t.Fatalf("audit: %+v", c.Audit)
	}
	if got := c.AuditStreams[0].Options["brokers"].List; len(got) != 2 || got[1] != "k2:9092" {
		t.Fatalf("stream brokers: %v", got)
	}
	if v, _ := c.AuditSettings.Get("allow_api_changes"); v != "false" {
		t.Fatalf("audit_settings: %v", c.AuditSettings)
	}
	if err := c.Audit[0].Unknown("path", "fsync"); err != nil {
		t.Fatal(err)
	}
	err = c.Audit[0].Unknown("path")
	if err == nil || !strings.Contains(err.Error(), `vigil.hcl:20: unknown key "fsync"`) {
		t.Fatalf("unknown option error: %v", err)
	}
}

func TestParseJSON(t *testing.T) {
	src := `{"storage":{"raft":{"path":"/d","node_id":"n"}},"listener":[{"tcp":{"address":"127.0.0.1:9","tls_disable":true}}],"ui":true}`
	c, err := Parse("vigil.json", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if c.Storage.Path != "/d" || c.Listeners[0].Address != "127.0.0.1:9" || !c.UI {
		t.Fatalf("json config: %+v", c)
	}
}

func TestUnknownKeysNameKeyAndLine(t *testing.T) {
	cases := map[string]struct{ src, want string }{
		"top level": {"storage \"raft\" {\n path = \"/d\"\n}\nbogus = 1\n", "c.hcl:4"},
		"listener":  {"listener \"tcp\" {\n  address = \"x:1\"\n  tls_disable = true\n  colour = \"red\"\n}\n", "c.hcl:4"},
		"storage":   {"storage \"raft\" {\n  path = \"/d\"\n  wat = 1\n}\n", `c.hcl:3: unknown key "wat"`},
		"block":     {"mystery {\n}\n", "c.hcl:1"},
	}
	for name, c := range cases {
		_, err := Parse("c.hcl", []byte(c.src))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v does not contain %q", name, err, c.want)
		}
	}
}

func TestBadValues(t *testing.T) {
	for name, src := range map[string]string{
		"bad storage type": "storage \"consul\" {}\n",
		"client cert":      "listener \"tcp\" {\n tls_cert_file = \"c\"\n tls_key_file = \"k\"\n tls_require_and_verify_client_cert = true\n}\n",
		"log level":        "log_level = \"loud\"\n",
		"duration":         "max_lease_ttl = \"forever\"\n",
		"syntax":           "storage \"raft\" {\n",
	} {
		if _, err := Parse("c.hcl", []byte(src)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
