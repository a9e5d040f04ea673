package authz

// Built-in policy names.
const (
	// RootPolicy grants everything; it has no rules, cannot be written or
	// deleted, and tokens carrying it are allowed every request.
	RootPolicy = "root"
	// DefaultPolicy is attached to tokens unless they opt out. It is
	// created from DefaultPolicyRules on first unseal; it can be updated but
	// not deleted.
	DefaultPolicy = "default"
	// ResponseWrappingPolicy is the one policy of response-wrapping tokens.
	// It is built in (ResponseWrappingPolicyRules), never stored, listed,
	// written or deleted, and a stored policy of that name is ignored.
	ResponseWrappingPolicy = "response-wrapping"
)

// ResponseWrappingPolicyRules lets a wrapping token be unwrapped and
// looked up, and nothing else (Vault's also grants cubbyhole/response,
// which Vigil serves only through sys/wrapping/unwrap: reading it directly
// would spend the token without the checks unwrap makes).
const ResponseWrappingPolicyRules = `
path "sys/wrapping/unwrap" {
    capabilities = ["update"]
}
path "sys/wrapping/lookup" {
    capabilities = ["read", "update"]
}
`

// DefaultPolicyRules is Vault's built-in "default" policy (as of Vault
// 1.12+, vault/policy_store.go), verbatim.
const DefaultPolicyRules = `
# Allow tokens to look up their own properties
path "auth/token/lookup-self" {
    capabilities = ["read"]
}

# Allow tokens to renew themselves
path "auth/token/renew-self" {
    capabilities = ["update"]
}

# Allow tokens to revoke themselves
path "auth/token/revoke-self" {
    capabilities = ["update"]
}

# Allow a token to look up its own capabilities on a path
path "sys/capabilities-self" {
    capabilities = ["update"]
}

# Allow a token to look up its own entity by id or name
path "identity/entity/id/{{identity.entity.id}}" {
  capabilities = ["read"]
}
path "identity/entity/name/{{identity.entity.name}}" {
  capabilities = ["read"]
}


# Allow a token to look up its resultant ACL from all policies. This is useful
# for UIs. It is an internal path because the format may change at any time
# based on how the internal ACL features and capabilities change.
path "sys/internal/ui/resultant-acl" {
    capabilities = ["read"]
}

# Vigil addition: the mount preflight that the Vault CLI's kv commands make
# (Vault serves sys/internal/ui/mounts without a token; Vigil requires one).
path "sys/internal/ui/mounts" {
    capabilities = ["read"]
}
path "sys/internal/ui/mounts/*" {
    capabilities = ["read"]
}

# Allow a token to renew a lease via lease_id in the request body; old path for
# old clients, new path for newer
path "sys/renew" {
    capabilities = ["update"]
}
path "sys/leases/renew" {
    capabilities = ["update"]
}

# Allow looking up lease properties. This requires knowing the lease ID ahead
# of time and does not divulge any sensitive information.
path "sys/leases/lookup" {
    capabilities = ["update"]
}

# Allow a token to manage its own cubbyhole
path "cubbyhole/*" {
    capabilities = ["create", "read", "update", "delete", "list"]
}

# Allow a token to wrap arbitrary values in a response-wrapping token
path "sys/wrapping/wrap" {
    capabilities = ["update"]
}

# Allow a token to look up the creation time and TTL of a given
# response-wrapping token
path "sys/wrapping/lookup" {
    capabilities = ["update"]
}

# Allow a token to unwrap a response-wrapping token. This is a convenience to
# avoid client token swapping since this is also part of the response wrapping
# policy.
path "sys/wrapping/unwrap" {
    capabilities = ["update"]
}

# Allow general purpose tools
path "sys/tools/hash" {
    capabilities = ["update"]
}
path "sys/tools/hash/*" {
    capabilities = ["update"]
}

# Allow checking the status of a Control Group request if the user has the
# accessor
path "sys/control-group/request" {
    capabilities = ["update"]
}

# Allow a token to make requests to the Authorization Endpoint for OIDC providers.
path "identity/oidc/provider/+/authorize" {
    capabilities = ["read", "update"]
}
`
