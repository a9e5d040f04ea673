# From the OpenBao documentation, docs/configuration/audit (MPL-2.0), example 1.
audit "file" "to-stdout" {
  description = "Write audit information to standard output."
  options {
    file_path = "stdout"
  }
}
