# From the OpenBao documentation, docs/configuration/ui (MPL-2.0), example 2.
listener "tcp" {
  address = "10.0.1.35:8200"

  # If bound to localhost, the OpenBao UI is only
  # accessible from the local machine!
  # address = "127.0.0.1:8200"
}
