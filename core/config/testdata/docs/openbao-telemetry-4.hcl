# From the OpenBao documentation, docs/configuration/telemetry (MPL-2.0), example 5.
telemetry {
  stackdriver_project_id = "my-test-project"
  stackdriver_location = "us-east1-a"
  stackdriver_namespace = "openbao-cluster-a"
  disable_hostname = true
  enable_hostname_label = true
}
