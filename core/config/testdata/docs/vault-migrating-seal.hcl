# A seal migration as Vault documents it: the old seal marked disabled.
storage "raft" {
  path    = "/opt/vault/data"
  node_id = "vault-1"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
seal "transit" {
  address    = "https://vault-unsealer:8200"
  token      = "s.example"
  key_name   = "old-key"
  mount_path = "transit/"
  disabled   = "true"
}
seal "awskms" {
  region     = "us-east-1"
  kms_key_id = "alias/vault"
}
