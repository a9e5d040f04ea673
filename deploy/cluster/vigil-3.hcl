# Node 3 of a 3-node Vigil cluster (see README "Running a cluster").
# Every node lists every node in retry_join (its own entry is skipped):
# start order does not matter.
storage "raft" {
  path    = "/var/lib/vigil"
  node_id = "vigil-3"

  retry_join {
    leader_api_addr     = "https://vigil-1.example.internal:8200"
    leader_ca_cert_file = "/etc/vigil/tls/ca.crt"
  }
  retry_join {
    leader_api_addr     = "https://vigil-2.example.internal:8200"
    leader_ca_cert_file = "/etc/vigil/tls/ca.crt"
  }
  retry_join {
    leader_api_addr     = "https://vigil-3.example.internal:8200"
    leader_ca_cert_file = "/etc/vigil/tls/ca.crt"
  }
}

listener "tcp" {
  address       = "0.0.0.0:8200"
  tls_cert_file = "/etc/vigil/tls/server.crt"
  tls_key_file  = "/etc/vigil/tls/server.key"
}

# api_addr: what clients and the other nodes use for this node's API;
# cluster_addr: the raft port (mutual TLS with the cluster's own CA,
# created at init: nothing to configure).
api_addr     = "https://vigil-3.example.internal:8200"
cluster_addr = "https://vigil-3.example.internal:8201"
ui           = true
log_level    = "info"

token_default_ttl = "1h"
token_max_ttl     = "24h"

# Each node keeps its own hash-chained log; its checkpoints are kept in
# Raft and countersigned by the other nodes.
audit "file" "primary" {
  path             = "/var/log/vigil/audit.log"
  fsync            = "always"
  max_size_mb      = 256
  compress         = true
  retain_days      = 2190
  checkpoint_every = 1000
}

# Every node ships its own log; (node_id, seq) keeps the sink exact.
audit_stream "kafka" "siem" {
  brokers = ["kafka-1.example.internal:9092", "kafka-2.example.internal:9092"]
  topic   = "vigil-audit"
  format  = "ocsf"
}
