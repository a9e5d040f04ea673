# auditor: may query the audit trail (GET /v1/sys/audit/query,
# `vigil audit query`), generate the HIPAA and NRB reports
# (`vigil report`), run the compliance checks (`vigil compliance check`),
# verify the audit log against the server's key and every witness's
# checkpoints (`vigil audit verify`), get Merkle proofs (`vigil audit
# prove`) and use the /ui/ dashboard, and nothing else: no secret, no
# policy, no change. None of these routes is root-protected, so no sudo is needed;
# grant the policy to the auditors' auth role:
#
#   vigil policy write auditor auditor.hcl
#   vigil write auth/userpass/users/audrey password=... token_policies=auditor
path "sys/audit/query" {
  capabilities = ["read"]
}

path "sys/reports/*" {
  capabilities = ["read"]
}

path "sys/compliance/*" {
  capabilities = ["read"]
}

path "sys/audit/checkpoint-key" {
  capabilities = ["read"]
}

path "sys/audit/checkpoints/*" {
  capabilities = ["read"]
}

path "sys/audit/witnesses" {
  capabilities = ["read"]
}

path "sys/audit/witnesses/*" {
  capabilities = ["read"]
}

path "sys/audit/proof/*" {
  capabilities = ["read"]
}
