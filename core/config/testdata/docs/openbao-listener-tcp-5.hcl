# From the OpenBao documentation, docs/configuration/listener/tcp (MPL-2.0), example 6.
listener "tcp" {
  profiling {
    unauthenticated_pprof_access = true
    unauthenticated_in_flight_request_access = true
  }
}
