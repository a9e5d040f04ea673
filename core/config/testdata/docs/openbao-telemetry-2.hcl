# From the OpenBao documentation, docs/configuration/telemetry (MPL-2.0), example 3.
telemetry {
  statsd_address = "statsd.company.local:8125"
}
