storage "raft" {
  path    = "/var/lib/vigil"
  node_id = "vigil-1"
}

listener "tcp" {
  address       = "0.0.0.0:8200"
  tls_cert_file = "/etc/vigil/tls/server.crt"
  tls_key_file  = "/etc/vigil/tls/server.key"
}

api_addr     = "https://vigil-1.example.internal:8200"
cluster_addr = "https://vigil-1.example.internal:8201"
ui           = true
log_level    = "info"

token_default_ttl = "1h"
token_max_ttl     = "24h"

# Two local devices on different disks, both durable (fsync = "always"): a request is
# executed only once both have its request entry on disk, and answered only once both
# have its response entry.
audit "file" "primary" {
  path             = "/var/log/vigil/audit.log"
  fsync            = "always"
  max_size_mb      = 256
  compress         = true
  retain_days      = 2190
  checkpoint_every = 1000
}

audit "file" "secondary" {
  path        = "/var/lib/vigil/audit/audit.log"
  fsync       = "always"
  max_size_mb = 256
  compress    = true
  retain_days = 2190
}

audit_stream "kafka" "siem" {
  brokers = ["kafka-1.example.internal:9092", "kafka-2.example.internal:9092"]
  topic   = "vigil-audit"
  format  = "ocsf"
}

audit_settings {
  require_audit     = true   # no durable device, no service (the default)
  allow_api_changes = false  # devices are changed here, not over the API (the default)
}
