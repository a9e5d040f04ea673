# From the OpenBao documentation, docs/configuration/listener/tcp (MPL-2.0), example 5.
listener "tcp" {
  telemetry {
    unauthenticated_metrics_access = true
  }
}
