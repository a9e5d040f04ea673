// Package querytest holds what the query backends are tested with: a
// deterministic generator of realistic audited traffic written through the
// real audit broker and chain (Traffic, MustLog), a reference
// implementation of the query semantics over raw log lines (Reference),
// and the conformance suite every query.Backend passes (Run).
package querytest

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"math/rand"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigilsec/vigil/audit"
	"github.com/vigilsec/vigil/audit/chain"
	"github.com/vigilsec/vigil/audit/format/vault"
	"github.com/vigilsec/vigil/audit/hmac"
	"github.com/vigilsec/vigil/core"
)

// Actor is one caller of the generated traffic.
type Actor struct {
	Name     string // display name
	Entity   string
	Accessor string // raw accessor (HMAC'd in the log)
	Token    string
	Policies []string
	Root     bool
	// Identity is what the identity store resolved for the token (nil:
	// none recorded, as for root or tokens from before identity).
	Identity *core.Identity
	// CreatorAccessor and CreatorEntityID name the token that created
	// this one.
	CreatorAccessor, CreatorEntityID string
}

// Actors used by Traffic: alice's entity is named, bob's was created by
// his first login (so his actor is "userpass/bob") and his token by
// alice's, billing is a named workload, carol's token has no identity
// recorded.
var Actors = []Actor{
	{Name: "userpass-alice", Entity: "ent-alice", Accessor: "acc-alice-0001", Token: "hvs.alice", Policies: []string{"default", "app-read", "icu"},
		Identity: &core.Identity{EntityID: "ent-alice", EntityName: "alice", Actor: "alice", Alias: "userpass/alice",
			Groups: []string{"icu-clinicians"}, Policies: []string{"icu"}}},
	{Name: "userpass-bob", Entity: "ent-bob", Accessor: "acc-bob-0002", Token: "hvs.bob", Policies: []string{"default", "app-write"},
		Identity:        &core.Identity{EntityID: "ent-bob", EntityName: "entity_0b0b0b0b", Actor: "userpass/bob", Alias: "userpass/bob"},
		CreatorAccessor: "acc-alice-0001", CreatorEntityID: "ent-alice"},
	{Name: "approle-billing", Entity: "ent-billing", Accessor: "acc-billing-0003", Token: "hvs.billing", Policies: []string{"default", "billing"},
		Identity: &core.Identity{EntityID: "ent-billing", EntityName: "billing-svc", Actor: "billing-svc", Alias: "approle/9f2c-role"}},
	{Name: "root", Accessor: "acc-root-0004", Token: "hvs.root", Policies: []string{"root"}, Root: true},
	{Name: "userpass-carol", Entity: "ent-carol", Accessor: "acc-carol-0005", Token: "hvs.carol", Policies: []string{"default", "dba"}},
}

type route struct {
	path, mount, mountType string
	ops                    []core.Operation
}

var routes = []route{
	{"secret/data/prod/db/password", "secret/", "kv", []core.Operation{core.OpRead, core.OpRead, core.OpUpdate}},
	{"secret/data/prod/api/key", "secret/", "kv", []core.Operation{core.OpRead, core.OpCreate}},
	{"secret/data/dev/app/config", "secret/", "kv", []core.Operation{core.OpRead, core.OpUpdate, core.OpPatch}},
	{"secret/metadata/prod/", "secret/", "kv", []core.Operation{core.OpList}},
	{"secret/data/phi/patient-42", "secret/", "kv", []core.Operation{core.OpRead, core.OpDelete}},
	{"transit/encrypt/payments", "transit/", "transit", []core.Operation{core.OpUpdate}},
	{"pki/issue/web", "pki/", "pki", []core.Operation{core.OpUpdate}},
	{"database/creds/readonly", "database/", "database", []core.Operation{core.OpRead}},
	{"sys/policies/acl/app-read", "sys/", "system", []core.Operation{core.OpUpdate, core.OpRead}},
	{"auth/token/lookup-self", "auth/token/", "token", []core.Operation{core.OpRead}},
}

// Request is one generated request: its request event, and its response
// event unless the request is incomplete (the response was never written).
type Request struct {
	Req, Resp *core.AuditEvent
}

// Traffic generates n requests deterministically from seed, starting at
// start and spaced by step: reads and writes across KV, transit, PKI,
// database and sys paths by several actors, with denials (policy and bad
// token), not-found errors, logins (successful and failed), break-glass
// flagged requests, root token use, lease expiry by the server itself
// (internal), requests rejected while sealed, and a few incomplete ones.
func Traffic(seed int64, n int, start time.Time, step time.Duration) []Request {
	rng := rand.New(rand.NewSource(seed))
	out := make([]Request, 0, n)
	at := start
	for i := 0; i < n; i++ {
		at = at.Add(step)
		id := fmt.Sprintf("%08x-0000-4000-8000-%012x", seed&0xffffffff, i)
		out = append(out, one(rng, i, id, at, step))
	}
	return out
}

func one(rng *rand.Rand, i int, id string, at time.Time, step time.Duration) Request {
	a := Actors[rng.Intn(len(Actors))]
	rt := routes[rng.Intn(len(routes))]
	op := rt.ops[rng.Intn(len(rt.ops))]
	req := &core.Request{ID: id, Operation: op, Path: rt.path, RemoteAddr: fmt.Sprintf("10.0.%d.%d", rng.Intn(3), 1+rng.Intn(20)),
		RemotePort: 40000 + rng.Intn(20000), Time: at, Mount: &core.MountInfo{Path: rt.mount, Type: rt.mountType, Accessor: rt.mountType + "_1234", Class: "secret"}}
	if op == core.OpUpdate || op == core.OpCreate || op == core.OpPatch {
		req.Data = map[string]any{"data": map[string]any{"value": fmt.Sprintf("v%d", i)}}
	}
	principal := &core.Principal{ClientToken: a.Token, Accessor: a.Accessor, DisplayName: a.Name, Policies: a.Policies,
		TokenPolicies: a.Policies, EntityID: a.Entity, TokenType: "service", Root: a.Root, TTL: time.Hour,
		Identity: a.Identity, CreatorAccessor: a.CreatorAccessor, CreatorEntityID: a.CreatorEntityID}
	dec := &core.Decision{Allowed: true, Operation: op, GrantingPolicies: []core.PolicyRef{{Name: a.Policies[len(a.Policies)-1], Type: "acl"}}}
	var resp *core.Response
	var err error
	roll := rng.Intn(100)
	reqTime, respTime := at, at.Add(time.Duration(rng.Intn(int(step/2)+1)))
	switch {
	case roll < 8: // policy denial
		dec = &core.Decision{Allowed: false, Operation: op, DenyReasons: []string{"no policy grants " + string(op) + " on " + rt.path}}
		err = core.ErrPermissionDenied
	case roll < 11: // bad token: no principal, no decision
		principal, dec, err = nil, nil, core.ErrPermissionDenied
		req.ClientToken = "hvs.bogus"
	case roll < 14: // not found
		err = core.Errorf(core.CodeNotFound, "no value found at %s", rt.path)
	case roll < 17: // break glass
		dec.Flags = map[string]string{"break_glass": "true", "ticket": fmt.Sprintf("INC-%d", 100+rng.Intn(5))}
		resp = &core.Response{Data: map[string]any{"data": map[string]any{"password": "s3cr3t"}}}
	case roll < 21: // login
		name := []string{"alice", "bob", "mallory"}[rng.Intn(3)]
		req.Path, req.Operation, req.Mount = "auth/userpass/login/"+name, core.OpUpdate, &core.MountInfo{Path: "auth/userpass/", Type: "userpass", Accessor: "auth_userpass_1", Class: "auth"}
		req.Data = map[string]any{"password": "pw-" + name}
		principal, dec, req.Unauthenticated = nil, nil, true
		if name == "mallory" {
			err = core.Errorf(core.CodePermissionDenied, "invalid username or password")
		} else {
			resp = &core.Response{Auth: &core.Auth{ClientToken: "hvs.login-" + name, Accessor: "acc-login-" + name, DisplayName: name,
				Policies: []string{"default"}, EntityID: "ent-" + name, TokenType: "service", TTL: time.Hour, Metadata: map[string]string{"username": name}}}
			for _, a := range Actors {
				if a.Entity == "ent-"+name && a.Identity != nil {
					resp.Auth.Identity = a.Identity
				}
			}
		}
	case roll < 24: // lease expiry, by the server itself
		req.Path, req.Operation, req.Mount = "database/creds/readonly", core.OpRevoke, &core.MountInfo{Path: "database/", Type: "database", Accessor: "database_1", Class: "secret"}
		req.Internal, req.InternalActor = true, "expiration"
		req.RemoteAddr, req.RemotePort, req.Data = "", 0, nil
		req.Secret = &core.Secret{LeaseID: fmt.Sprintf("database/creds/readonly/lease-%d", i)}
		principal, dec = nil, nil
	case roll < 25: // rejected while sealed: no principal or decision (nothing was evaluated)
		inNamespace(req, i)
		r := Request{Req: &core.AuditEvent{Type: "request", Time: reqTime, Request: req, Err: core.ErrSealed, Sealed: true}}
		r.Resp = &core.AuditEvent{Type: "response", Time: respTime, Request: req, Err: core.ErrSealed, Sealed: true}
		return r
	case roll < 26: // incomplete: the response entry was never written
		inNamespace(req, i)
		req.Principal, req.Decision = principal, dec
		return Request{Req: &core.AuditEvent{Type: "request", Time: reqTime, Request: req}}
	default:
		if op == core.OpRead {
			resp = &core.Response{Data: map[string]any{"data": map[string]any{"password": "p" + id[len(id)-4:]}, "metadata": map[string]any{"version": 3}}}
		} else if op != core.OpDelete {
			resp = &core.Response{Data: map[string]any{"version": 4}}
		}
	}
	inNamespace(req, i)
	req.Principal, req.Decision = principal, dec
	r := Request{Req: &core.AuditEvent{Type: "request", Time: reqTime, Request: req, Err: err}}
	r.Resp = &core.AuditEvent{Type: "response", Time: respTime, Request: req, Response: resp, Err: err}
	return r
}

// Namespaces of the generated traffic: one request in ten is made in
// hospital-a/, one in twenty in its child hospital-a/icu/ and one in
// twenty in hospital-b/; the rest in the root namespace.
var (
	NamespaceA   = core.Namespace{ID: "HosPtA", Path: "hospital-a/"}
	NamespaceICU = core.Namespace{ID: "HosICU", Path: "hospital-a/icu/"}
	NamespaceB   = core.Namespace{ID: "HosPtB", Path: "hospital-b/"}
)

// inNamespace puts request i in its namespace (by i alone, so the random
// draws, and with them the rest of the traffic, do not change).
func inNamespace(req *core.Request, i int) {
	var ns core.Namespace
	switch {
	case i%10 == 4:
		ns = NamespaceA
	case i%20 == 9:
		ns = NamespaceICU
	case i%20 == 19:
		ns = NamespaceB
	default:
		return
	}
	req.Namespace = &ns
	if req.Mount != nil {
		m := *req.Mount
		m.Path = ns.Path + m.Path
		req.Mount = &m
	}
}

// Log is a chain written by the real audit broker.
type Log struct {
	Path   string
	NodeID string
	Salt   *hmac.Salt
	Key    ed25519.PrivateKey
	W      *chain.Writer
	Broker *audit.Broker
}

// PublicKey is the checkpoint verification key.
func (l *Log) PublicKey() ed25519.PublicKey { return l.Key.Public().(ed25519.PublicKey) }

// LogOptions tune MustLog.
type LogOptions struct {
	NodeID    string // default "node-1"
	MaxSizeMB int    // rotation size (default: chain default)
	Compress  bool
	Now       func() time.Time // chain clock (segment headers, checkpoints); default: the traffic's times
	// CheckpointEvery is the chain's checkpoint cadence (default 50, so
	// small logs have several).
	CheckpointEvery int
	Fsync           chain.FsyncMode
}

// KeySeed is the seed of the checkpoint key MustLog uses.
var KeySeed = []byte("vigil-querytest-checkpoint-key!!")

// MustOpenLog opens a chain at dir/audit.log behind a real broker and file
// device (salted HMAC, HMAC'd accessors, signed checkpoints).
func MustOpenLog(tb testing.TB, dir string, o LogOptions) *Log {
	tb.Helper()
	if o.NodeID == "" {
		o.NodeID = "node-1"
	}
	if o.CheckpointEvery == 0 {
		o.CheckpointEvery = 50
	}
	if o.Fsync == 0 {
		o.Fsync = chain.FsyncNone
	}
	salt, err := hmac.New([]byte("querytest-salt-0123456789abcdef!"))
	if err != nil {
		tb.Fatal(err)
	}
	key := ed25519.NewKeyFromSeed(KeySeed)
	path := filepath.Join(dir, "audit.log")
	w, err := chain.Open(chain.Config{Path: path, NodeID: o.NodeID, Fsync: o.Fsync, MaxSizeMB: o.MaxSizeMB, Compress: o.Compress,
		Signer: key, CheckpointEvery: o.CheckpointEvery, CheckpointInterval: -1, WatchInterval: -1, Now: o.Now, WriteTimeout: time.Minute})
	if err != nil {
		tb.Fatal(err)
	}
	dc := &audit.DeviceConfig{Name: "file", Type: audit.TypeFile, Path: path, HMACAccessor: true, WriteTimeout: time.Minute}
	b := audit.NewBroker(audit.BrokerConfig{})
	b.Add(audit.NewDevice(dc, "config", vault.Options{Salt: salt, HMACAccessor: true}, &audit.FileSink{W: w}, nil))
	b.SetRequired(true)
	l := &Log{Path: path, NodeID: o.NodeID, Salt: salt, Key: key, W: w, Broker: b}
	tb.Cleanup(func() { _ = b.Close() })
	return l
}

// Write records the requests through the broker, in order.
func (l *Log) Write(tb testing.TB, reqs []Request) {
	tb.Helper()
	ctx := context.Background()
	for _, r := range reqs {
		if err := l.Broker.LogRequest(ctx, r.Req); err != nil {
			tb.Fatal(err)
		}
		if r.Resp != nil {
			if err := l.Broker.LogResponse(ctx, r.Resp); err != nil {
				tb.Fatal(err)
			}
		}
	}
}

// Checkpoint writes a signed checkpoint covering everything written so
// far, so queries see all of it.
func (l *Log) Checkpoint(tb testing.TB) chain.Checkpoint {
	tb.Helper()
	cp, err := l.W.Checkpoint()
	if err != nil {
		tb.Fatal(err)
	}
	return cp
}

// Head is the writer's durable head.
func (l *Log) Head() (uint64, bool) {
	s, _ := l.W.Head()
	return s, true
}

// MustLog writes the requests to a new log in dir and ends it with a
// checkpoint. The log stays open (close it with l.Broker.Close()).
func MustLog(tb testing.TB, dir string, reqs []Request, o LogOptions) *Log {
	tb.Helper()
	l := MustOpenLog(tb, dir, o)
	l.Write(tb, reqs)
	l.Checkpoint(tb)
	return l
}
