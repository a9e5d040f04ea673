# From the OpenBao documentation, docs/configuration/listener/tcp (MPL-2.0), example 1.
listener "tcp" {
  address = "127.0.0.1:8200"
}
