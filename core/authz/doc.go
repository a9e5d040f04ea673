// Package authz is Vigil's authorizer: Vault ACL policies (HCL) and custom
// Rego modules, decided by the Rego bundle of package rego (OPA, Rego v1).
//
// # Pipeline
//
//	HCL text ──ParseACL──► PathRule ──(per token policy set: merge as Vault's
//	NewACL, index by literal prefix)──► entries ──► input.acl.entries
//	custom modules ──compiled with the bundle──► data.vigil.custom.<name>
//	request + principal + mount ──► input ──► data.vigil.authz.decision
//	                                         └─► core.Decision (audit)
//
// Go parses and merges (a data transformation, like Vault's NewACL); every
// decision — which rule wins (exact match, the list fallbacks, Vault's
// priority order for "*" and "+"), capabilities, sudo, wrapping TTLs,
// parameter constraints, custom modules, root — is made by the Rego bundle.
// The raw rules are also loaded as data (data.vigil_policies.acl[<name>]
// .rules) so custom modules may inspect them.
//
// Fail closed: a module that does not parse or compile is refused on write
// with OPA's "file:line: message"; an evaluation error, a malformed decision
// or a timeout (Config.EvalTimeout, 500 ms by default) denies, with the cause
// in Decision.Error and DenyReasons ("policy evaluation failed: ..."); policies
// that cannot be loaded from storage deny every non-root request.
//
// # Input document
//
// Custom modules read input (values are strings unless noted):
//
//	input.token.accessor, display_name, entity_id, type ("service"|"batch"),
//	           creation_path, issue_time, expire_time (RFC 3339, "" if none)
//	input.token.policies, token_policies     [string]
//	input.token.metadata                     {string: string}
//	input.token.ttl                          number, seconds
//	input.token.issue_time_ns                number, Unix ns
//	input.token.root, orphan                 bool
//	input.token.num_uses_left                number (0 unlimited)
//	input.identity.entity_id, name           the token's entity ("" when none)
//	input.identity.actor                     canonical actor name (entity name, or
//	                                         "<mount>/<alias>" for an unnamed entity)
//	input.identity.alias                     "<mount>/<alias>" the token's login used
//	input.identity.metadata                  {string: string}, the entity's metadata
//	input.identity.groups, group_ids         [string], the entity's groups (internal
//	                                         and external, direct and inherited), by
//	                                         name, resolved on every request
//	input.identity.policies                  [string], policies from entity and groups
//	input.request.id, path, operation        operation: create|read|update|patch|delete|list
//	input.request.parameters                 [string], sorted parameter NAMES (never values)
//	input.request.remote_addr                client IP
//	input.request.time                       RFC 3339; time_ns: number, Unix ns
//	input.request.headers                    {canonical name: first value} for every
//	                                         X-Vigil-* header (X-Vigil-Reason,
//	                                         X-Vigil-Ticket, ...) and Config.Headers
//	input.request.sudo_required              bool: the route is root-protected
//	input.request.wrap_ttl                   number, seconds (0: not wrapped)
//	input.mount.path, type, accessor, class  "secret/", "kv", ...
//	input.mount.tags, options                {string: string}; tags are the mount's
//	                                         options except "version" (phi=true)
//	input.mount.local                        bool
//	input.namespace.id, path                 the request's namespace: {"id": "root",
//	                                         "path": ""} in the root namespace. In
//	                                         another namespace input.request.path and
//	                                         input.mount.path are full paths, the
//	                                         namespace's path in front
//
// input.acl (the ACL entries and the values of value-constrained parameters)
// is removed before custom modules are evaluated.
//
// # Custom-module contract
//
// A module is stored with PUT sys/policies/rego/<name> {"policy": "<Rego v1>",
// "enforcement_level": "mandatory"|"advisory"} (default mandatory). <name>
// matches ^[a-z_][a-z0-9_]*$ and the module declares
//
//	package vigil.custom.<name>
//
// and defines at least one of:
//
//	deny contains reason if { ... }   # set of strings: why the request is denied
//	allow if { ... }                  # true: grant a request the ACL does not
//	flags[key] := value if { ... }    # strings recorded in the audit entry (Decision.Flags)
//	require_approval := {...} if { ... }  # approvals before an allowed request runs
//
// Semantics: a mandatory module's deny reasons deny the request (they go to
// Decision.DenyReasons as "rego <name>: <reason>"); an advisory module's go to
// Decision.Advisories and are not enforced. A mandatory module's allow grants
// a request that the ACL does not allow, unless an ACL rule explicitly denies
// the path or the route is root-protected (sudo comes only from ACL
// policies); the module is then a granting policy {name, type: "rego"}.
// Advisory allows grant nothing. Flags of all modules are merged (values of
// one key from several modules are joined with ","). A mandatory module's
// require_approval — {"factors": [{"name", "group_names", "approvals"}],
// "ttl", "max_ttl"}, or the list (or set) of factors alone — makes an
// allowed request wait for approvals exactly as an ACL control_group does
// (Decision.Approval, factors of all sources united); advisory modules'
// are ignored, and a malformed one denies (fail closed). Modules apply to every
// authenticated request except root tokens' (as Vault's Sentinel policies).
// http.send, net.lookup_ip_addr and opa.runtime are not available. Helper
// rules and functions are free.
//
// # Decision cache
//
// Decisions are cached per policy revision, keyed by the token's policy set,
// operation, sudo flag and path, plus only what matters: parameter names when
// a rule of the set constrains parameters, the values of value-constrained
// parameters, the wrapping TTL when a rule sets wrapping limits, and the value
// of every input path a custom module reads (found by walking the compiled
// modules). A module that reads input.request.time, time_ns or id, the whole
// request or input, or calls a non-deterministic builtin (time.now_ns,
// rand.intn, ...) makes decisions uncacheable while it is loaded. Any policy
// write builds a new revision with an empty cache.
//
// # Cluster
//
// Every write stores the policy and a bumped revision counter
// (sys/policy/revision) in one storage transaction. Other nodes reload when
// Invalidate is called with a changed key under sys/policy/ (wire it to the
// storage layer's apply callback) and, as a safety net, when the revision
// poll (Subsystem, every second by default) sees a new revision.
//
// # Explain API
//
// POST sys/policies/explain {"token" | "accessor", "path", "operation",
// "parameters" (names, or an object of names to values), "headers"
// (object), "remote_addr", "sudo" (optional override)} answers allowed,
// granting_policies, deny_reasons, advisories, flags, explanation, error,
// matched_rule {pattern, kind, policies, capabilities}, candidates,
// sudo_required, mount, cacheable, uncacheable_reason and revision. It
// evaluates afresh (never from the cache) and resolves the mount and the
// sudo flag through the router as the dispatcher does.
//
// # Differences from Vault
//
// HCL is parsed with HCL 2: one argument per line inside a block (Vault's
// HCL 1 also accepts `{ a = 1 b = 2 }` on one line); allowed_parameters may
// be written as an attribute or as a block with identifier keys. Templated
// paths ({{identity...}}) are accepted but never match.
// mfa_methods is accepted and ignored (Enterprise). control_group (Vault
// Enterprise's control groups) is enforced: an allowed request on a rule
// with a control group gets Decision.Approval — the factors that apply to
// the capability it needs (controlled_capabilities) — and the Dispatcher
// holds it until approved. Rules of one pattern merge their control groups
// (all factors, lowest ttl and max_ttl). Vault's `control_group = {`
// spelling is read as the block `control_group {`.
// JSON-pointer parameter keys are refused.
package authz
