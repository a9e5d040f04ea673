# A three-node integrated storage deployment as Vault's deployment guide
# configures each node (TLS everywhere, retry_join to the other nodes,
# AWS KMS auto-unseal, Prometheus metrics).
cluster_name  = "vault-prod"
api_addr      = "https://vault-1.example.com:8200"
cluster_addr  = "https://vault-1.example.com:8201"
ui            = true
disable_mlock = true
log_level     = "INFO"
log_format    = "json"
pid_file      = "/run/vault/vault.pid"

default_lease_ttl = "768h"
max_lease_ttl     = "8760h"

storage "raft" {
  path    = "/opt/vault/data"
  node_id = "vault-1"
  performance_multiplier = 1
  trailing_logs          = 10000
  snapshot_threshold     = 8192
  snapshot_interval      = "120s"
  max_entry_size         = 1048576
  autopilot_reconcile_interval = "10s"

  retry_join {
    leader_api_addr         = "https://vault-2.example.com:8200"
    leader_ca_cert_file     = "/opt/vault/tls/vault-ca.pem"
    leader_client_cert_file = "/opt/vault/tls/vault-cert.pem"
    leader_client_key_file  = "/opt/vault/tls/vault-key.pem"
  }
  retry_join {
    leader_api_addr         = "https://vault-3.example.com:8200"
    leader_tls_servername   = "vault.example.com"
    leader_ca_cert_file     = "/opt/vault/tls/vault-ca.pem"
  }
}

listener "tcp" {
  address                  = "0.0.0.0:8200"
  cluster_address          = "0.0.0.0:8201"
  tls_cert_file            = "/opt/vault/tls/vault-cert.pem"
  tls_key_file             = "/opt/vault/tls/vault-key.pem"
  tls_client_ca_file       = "/opt/vault/tls/vault-ca.pem"
  tls_min_version          = "tls12"
  tls_cipher_suites        = "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
  http_read_header_timeout = "10s"
  http_idle_timeout        = "5m"
  max_request_size         = 33554432
  max_request_duration     = "90s"
  redact_addresses         = false

  telemetry {
    unauthenticated_metrics_access = true
  }
}

seal "awskms" {
  region     = "us-east-1"
  kms_key_id = "19ec80b0-dfdd-4d97-8164-c6examplekey"
}

telemetry {
  prometheus_retention_time = "24h"
  disable_hostname          = true
  usage_gauge_period        = "10m"
}

service_registration "kubernetes" {
  namespace = "vault"
}
