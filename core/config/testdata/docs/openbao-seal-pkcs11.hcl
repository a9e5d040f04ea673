# From the OpenBao documentation, docs/configuration/seal/pkcs11 (MPL-2.0), example 1.
seal "pkcs11" {
  lib = "/usr/lib64/softhsm/libsofthsm.so"
  token_label = "OpenBao"
  pin = "4321"
  key_label = "bao-root-key-rsa"
}
