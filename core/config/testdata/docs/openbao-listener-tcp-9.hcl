# From the OpenBao documentation, docs/configuration/listener/tcp (MPL-2.0), example 10.
listener "tcp" {
  address         = "[::]:8200"
  cluster_address = "[::]:8201"
}
