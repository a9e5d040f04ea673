# Vault's listener with client certificates required (mutual TLS).
listener "tcp" {
  address                            = "127.0.0.1:8200"
  tls_cert_file                      = "/etc/vault/tls/server.pem"
  tls_key_file                       = "/etc/vault/tls/server-key.pem"
  tls_client_ca_file                 = "/etc/vault/tls/clients-ca.pem"
  tls_require_and_verify_client_cert = true
  tls_min_version                    = "tls13"
}
