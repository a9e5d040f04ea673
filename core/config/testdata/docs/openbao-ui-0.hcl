# From the OpenBao documentation, docs/configuration/ui (MPL-2.0), example 1.
ui = true

listener "tcp" {
  # ...
}
