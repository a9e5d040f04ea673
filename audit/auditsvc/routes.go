package auditsvc

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"strings"

	"github.com/vigilsec/vigil/audit"
	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

// routes are the audit subsystem's sys/ routes:
//
//	GET    sys/audit                       list devices (Vault's shape)
//	PUT    sys/audit/:path                 enable {type, description, options, local}
//	DELETE sys/audit/:path                 disable
//	POST   sys/audit-hash/:path {"input"}  {"hash": "hmac-sha256:..."}
//	GET    sys/audit/checkpoint-key        {key_id, public_key, public_key_pem, algorithm}
//	GET    sys/audit/checkpoints/:device   this node's last stored checkpoint
//	POST   sys/audit/verify                verify this node's file devices now
//	GET    sys/audit/verify                the last verification result
//	POST   sys/audit/relink/:device {"reason"}   acknowledge a refused log: new linked chain
//	GET    sys/audit/proof/inclusion?seq=N[&device=D][&checkpoint=S]
//	GET    sys/audit/proof/consistency?from=A[&to=B][&device=D]
//	GET    sys/audit/witnesses[/:device]   what every witness holds for this node's file devices
//	                                       (?node_id=: what the cluster holds for another node's)
//	PUT    sys/audit/witness/:node/:device this server as a witness of another's checkpoints
//	GET    sys/audit/witness/:node/:device what this server holds as a witness
//
// Device management, verification and relinking are root-protected
// (sudo), as in Vault. The checkpoint key, checkpoints, proofs and witness
// records are public facts about the log, governed by policy only, so an
// auditor's policy can grant them (reports/query/querysvc/auditor.hcl).
type routes struct{ a *Subsystem }

func (r routes) Routes() []framework.Route {
	ops := func(m map[core.Operation]framework.HandlerFunc) map[core.Operation]framework.HandlerFunc { return m }
	routes := append(r.settingsRoutes(), []framework.Route{
		{Pattern: `audit/?`, Sudo: true, Operations: ops(map[core.Operation]framework.HandlerFunc{core.OpRead: r.list}),
			Help: "List the enabled audit devices."},
		{Pattern: `audit/checkpoint-key/?`, Operations: ops(map[core.Operation]framework.HandlerFunc{core.OpRead: r.checkpointKey}),
			Help: "The public key that verifies audit checkpoint signatures."},
		{Pattern: `audit/checkpoints/(?P<device>[^/]+)/?`,
			Fields:     map[string]*framework.FieldSchema{"device": {Type: framework.TypeString}},
			Operations: ops(map[core.Operation]framework.HandlerFunc{core.OpRead: r.checkpoint}),
			Help:       "This node's last stored checkpoint of an audit device."},
		{Pattern: `audit/verify/?`, Sudo: true,
			Operations: ops(map[core.Operation]framework.HandlerFunc{core.OpRead: r.lastVerify, core.OpUpdate: r.verify}),
			Help:       "Verify this node's audit logs against the stored checkpoints and key."},
		{Pattern: `audit/relink/(?P<device>[^/]+)/?`, Sudo: true,
			Fields:     map[string]*framework.FieldSchema{"device": {Type: framework.TypeString}, "reason": {Type: framework.TypeString}},
			Operations: ops(map[core.Operation]framework.HandlerFunc{core.OpUpdate: r.relink}),
			Help:       "Acknowledge that a refused audit log no longer matches its checkpoints: move it aside and start a new chain linked to it."},
		{Pattern: `audit/proof/inclusion/?`, Fields: map[string]*framework.FieldSchema{
			"seq": {Type: framework.TypeInt64}, "device": {Type: framework.TypeString}, "checkpoint": {Type: framework.TypeInt64}},
			Operations: ops(map[core.Operation]framework.HandlerFunc{core.OpRead: r.proveInclusion}),
			Help:       "An RFC 9162 inclusion proof of one audit line against a signed checkpoint."},
		{Pattern: `audit/proof/consistency/?`, Fields: map[string]*framework.FieldSchema{
			"from": {Type: framework.TypeInt64}, "to": {Type: framework.TypeInt64}, "device": {Type: framework.TypeString}},
			Operations: ops(map[core.Operation]framework.HandlerFunc{core.OpRead: r.proveConsistency}),
			Help:       "An RFC 9162 consistency proof that one audit checkpoint extends another."},
		{Pattern: `audit/witnesses(?:/(?P<device>[^/]+))?/?`,
			Fields:     map[string]*framework.FieldSchema{"device": {Type: framework.TypeString}, "node_id": {Type: framework.TypeString}},
			Operations: ops(map[core.Operation]framework.HandlerFunc{core.OpRead: r.witnesses}),
			Help:       "What every witness (Raft storage, other nodes, streams, HTTP witnesses) holds for this node's audit device."},
		{Pattern: `audit/witness/(?P<node>[^/]+)/(?P<device>[^/]+)/?`, Fields: map[string]*framework.FieldSchema{
			"node": {Type: framework.TypeString}, "device": {Type: framework.TypeString},
			"checkpoint": {Type: framework.TypeMap}, "public_key": {Type: framework.TypeString}},
			Operations: ops(map[core.Operation]framework.HandlerFunc{core.OpRead: r.witnessGet, core.OpUpdate: r.witnessPut, core.OpCreate: r.witnessPut}),
			Help:       "This server as a witness: keep the newest checkpoint another Vigil sends, refusing older ones and other keys."},
		{Pattern: `audit/(?P<path>.+?)/?`, Sudo: true, Fields: map[string]*framework.FieldSchema{
			"path": {Type: framework.TypeString}, "type": {Type: framework.TypeString},
			"description": {Type: framework.TypeString}, "options": {Type: framework.TypeMap}, "local": {Type: framework.TypeBool},
		}, Operations: ops(map[core.Operation]framework.HandlerFunc{core.OpUpdate: r.enable, core.OpDelete: r.disable}),
			Help: "Enable or disable an audit device."},
		{Pattern: `audit-hash/(?P<path>.+?)/?`, Sudo: true, Fields: map[string]*framework.FieldSchema{
			"path": {Type: framework.TypeString}, "input": {Type: framework.TypeString},
		}, Operations: ops(map[core.Operation]framework.HandlerFunc{core.OpUpdate: r.hash}),
			Help: "Hash a value with an audit device's HMAC salt."},
	}...)
	return append(routes, r.requestHeaderRoutes()...)
}

func (r routes) list(_ context.Context, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
	data := map[string]any{}
	for _, d := range r.a.broker.Devices() {
		opts := map[string]string{}
		for k, v := range d.Config.Options {
			opts[k] = v
		}
		data[d.Name()+"/"] = map[string]any{"type": d.Config.Type, "description": d.Config.Description,
			"options": opts, "local": d.Config.Local, "path": d.Name() + "/"}
	}
	return &core.Response{Data: data}, nil
}

func (r routes) enable(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	name := strings.Trim(d.String("path"), "/")
	typ := d.String("type")
	if typ == "" {
		return nil, core.Invalid("type is required")
	}
	opts := map[string]string{}
	for k, v := range d.Map("options") {
		switch x := v.(type) {
		case string:
			opts[k] = x
		case nil:
		default:
			opts[k] = fmt.Sprint(x)
		}
	}
	if err := r.a.Enable(ctx, req, name, typ, d.String("description"), opts, d.Bool("local")); err != nil {
		return nil, err
	}
	return nil, nil
}

func (r routes) disable(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	return nil, r.a.Disable(ctx, req, strings.Trim(d.String("path"), "/"))
}

func (r routes) hash(_ context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	name := strings.Trim(d.String("path"), "/")
	dev := r.a.broker.Device(name)
	if dev == nil {
		return nil, core.Invalid("unknown audit backend %q", name)
	}
	if dev.Salt() == nil {
		return nil, core.Errorf(core.CodeUnavailable, "audit device %q has no salt (it could not be opened)", name)
	}
	return &core.Response{Data: map[string]any{"hash": dev.Salt().Hash(d.String("input"))}}, nil
}

func (r routes) checkpointKey(context.Context, *core.Request, *framework.FieldData) (*core.Response, error) {
	r.a.keyMu.Lock()
	signer, created := r.a.signer, r.a.keyTime
	r.a.keyMu.Unlock()
	if signer == nil {
		return nil, core.ErrSealed
	}
	k := audit.DescribeKey(signer.Public().(ed25519.PublicKey))
	return &core.Response{Data: map[string]any{"key_id": k.KeyID, "algorithm": k.Algorithm, "public_key": k.PublicKey,
		"public_key_pem": k.PEM, "created": created.UTC()}}, nil
}

// PublicKey returns the checkpoint verification key (false before the
// first unseal). It takes no lock: it is called while devices open.
func (a *Subsystem) PublicKey() (ed25519.PublicKey, bool) {
	p := a.pub.Load()
	if p == nil {
		return nil, false
	}
	return *p, true
}

func (r routes) checkpoint(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	cj, err := r.a.st.checkpoint(ctx, r.a.nodeID, d.String("device"))
	if err != nil {
		return nil, err
	}
	if cj == nil {
		return nil, core.ErrNotFound
	}
	return &core.Response{Data: map[string]any{"node_id": cj.NodeID, "seq": cj.Seq, "hash": cj.Hash, "tree_size": cj.TreeSize,
		"root": cj.Root, "time": cj.Time, "signature": cj.Signature, "key_id": cj.KeyID, "device": cj.Device, "path": cj.Path}}, nil
}

func (r routes) verify(ctx context.Context, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
	v, err := r.a.Verify(ctx)
	if err != nil {
		return nil, err
	}
	return &core.Response{Data: verificationData(v)}, nil
}

func (r routes) lastVerify(ctx context.Context, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
	v, err := r.a.st.verification(ctx, r.a.nodeID)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, core.ErrNotFound
	}
	return &core.Response{Data: verificationData(v)}, nil
}

func verificationData(v *audit.Verification) map[string]any {
	devs := map[string]any{}
	for n, d := range v.Devices {
		devs[n] = d
	}
	return map[string]any{"time": v.Time, "ok": v.OK, "node_id": v.NodeID, "devices": devs}
}

// evidenceContext prefixes every statement SignEvidence signs, so an
// evidence signature can never be taken for a checkpoint signature.
const evidenceContext = "vigil evidence signature v1\n"

// SignEvidence signs msg with the node's checkpoint key (Ed25519 over
// evidenceContext + msg) and returns the signature and the public key.
// Report bundles use it; `vigil report verify` checks it offline with the
// key `vigil audit checkpoint-key` prints. Fails while sealed.
func (a *Subsystem) SignEvidence(msg []byte) ([]byte, ed25519.PublicKey, error) {
	a.mu.Lock()
	key := a.signer
	a.mu.Unlock()
	if key == nil {
		return nil, nil, &core.Error{Code: core.CodeUnavailable, Msg: "audit: the checkpoint key is not loaded (sealed)"}
	}
	return ed25519.Sign(key, append([]byte(evidenceContext), msg...)), key.Public().(ed25519.PublicKey), nil
}

// EvidenceMessage is what SignEvidence signs for msg (for verifiers).
func EvidenceMessage(msg []byte) []byte { return append([]byte(evidenceContext), msg...) }
