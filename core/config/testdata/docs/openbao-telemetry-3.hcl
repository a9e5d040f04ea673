# From the OpenBao documentation, docs/configuration/telemetry (MPL-2.0), example 4.
telemetry {
  prometheus_retention_time = "30s"
  disable_hostname = true
}
