# From the OpenBao documentation, docs/configuration/listener/tcp (MPL-2.0), example 2.
listener "tcp" {
  tls_cert_file = "/etc/certs/openbao.crt"
  tls_key_file  = "/etc/certs/openbao.key"
}
