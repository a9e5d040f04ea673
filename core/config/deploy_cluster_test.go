package config

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestDeployClusterConfigs keeps the 3-node examples consistent: the three
// systemd configs differ in node id and addresses only, each lists every
// node in retry_join with the CA to check it by, and the StatefulSet runs 3
// replicas whose embedded config joins the three pods.
func TestDeployClusterConfigs(t *testing.T) {
	var joins []string
	for i := 1; i <= 3; i++ {
		path := fmt.Sprintf("../../deploy/cluster/vigil-%d.hcl", i)
		c, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		host := fmt.Sprintf("vigil-%d.example.internal", i)
		if c.Storage == nil || c.Storage.NodeID != fmt.Sprintf("vigil-%d", i) ||
			c.APIAddr != "https://"+host+":8200" || c.ClusterAddr != "https://"+host+":8201" {
			t.Fatalf("%s: node id or addresses: %+v", path, c)
		}
		var got []string
		for _, rj := range c.Storage.RetryJoin {
			if rj.LeaderCACertFile == "" {
				t.Errorf("%s: retry_join %s without leader_ca_cert_file", path, rj.LeaderAPIAddr)
			}
			got = append(got, rj.LeaderAPIAddr)
		}
		if len(got) != 3 {
			t.Fatalf("%s: retry_join %v, want the three nodes", path, got)
		}
		if joins == nil {
			joins = got
		} else if strings.Join(got, " ") != strings.Join(joins, " ") {
			t.Errorf("%s: retry_join %v, node 1 has %v", path, got, joins)
		}
		if len(c.Audit) == 0 || c.Listeners[0].TLSDisable {
			t.Errorf("%s: no audit device or plaintext listener", path)
		}
	}

	b, err := os.ReadFile("../../deploy/kubernetes/vigil-cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if !strings.Contains(s, "kind: StatefulSet") || !strings.Contains(s, "replicas: 3") {
		t.Fatal("vigil-cluster.yaml: no StatefulSet of 3 replicas")
	}
	for _, env := range []string{"VIGIL_RAFT_NODE_ID", "VIGIL_API_ADDR", "VIGIL_CLUSTER_ADDR"} {
		if !strings.Contains(s, "name: "+env) {
			t.Errorf("vigil-cluster.yaml: the pods do not set %s", env)
		}
	}
	kc, err := Parse("vigil-cluster.hcl", []byte(embeddedHCL(t, s)))
	if err != nil {
		t.Fatal(err)
	}
	if kc.Storage == nil || len(kc.Storage.RetryJoin) != 3 {
		t.Fatalf("manifest config: %+v", kc.Storage)
	}
	for i, rj := range kc.Storage.RetryJoin {
		if want := fmt.Sprintf("https://vigil-%d.vigil-internal:8200", i); rj.LeaderAPIAddr != want {
			t.Errorf("manifest retry_join %d: %s, want %s", i, rj.LeaderAPIAddr, want)
		}
	}
}

// embeddedHCL returns the vigil.hcl a manifest's ConfigMap carries.
func embeddedHCL(t *testing.T, manifest string) string {
	t.Helper()
	const key = "vigil.hcl: |\n"
	start := strings.Index(manifest, key)
	if start < 0 {
		t.Fatal("no embedded vigil.hcl in the manifest")
	}
	rest := manifest[start+len(key):]
	if end := strings.Index(rest, "\n---"); end >= 0 {
		rest = rest[:end]
	}
	var body strings.Builder
	for _, line := range strings.Split(rest, "\n") {
		body.WriteString(strings.TrimPrefix(line, "    "))
		body.WriteByte('\n')
	}
	return body.String()
}
