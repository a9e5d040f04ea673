# From the OpenBao documentation, docs/configuration/telemetry (MPL-2.0), example 1.
telemetry {
  statsite_address = "statsite.company.local:8125"
}
