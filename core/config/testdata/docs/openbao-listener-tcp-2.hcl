# From the OpenBao documentation, docs/configuration/listener/tcp (MPL-2.0), example 3.
listener "tcp" {
  tls_min_version = "tls13"
  tls_max_version = "tls13"
  tls_key_exchange_preferences = ["X25519MLKEM768", "SecP256r1MLKEM768", "SecP384r1MLKEM10242"]
}
