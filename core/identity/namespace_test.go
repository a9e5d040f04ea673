package identity

import (
	"context"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/storage"
)

// nsMounts adds namespaces to the fixed mount table: accessor → namespace.
type nsMounts struct {
	mounts
	ns map[string][2]string // accessor → {namespace id, namespace path}
}

func (m nsMounts) MountNamespace(acc string) (string, string, bool) {
	if _, ok := m.mounts[acc]; !ok {
		return "", "", false
	}
	v, ok := m.ns[acc]
	if !ok {
		return core.RootNamespaceID, "", true
	}
	return v[0], v[1], true
}

var hospA = core.Namespace{ID: "AAAAAA", Path: "hospital-a/"}

// callIn is call with the request in namespace ns.
func callIn(tb testing.TB, b *Backend, ns core.Namespace, op core.Operation, path string, data map[string]any) (*core.Response, error) {
	tb.Helper()
	for _, r := range b.Routes() {
		caps, ok := r.Match(path)
		if !ok {
			continue
		}
		raw := map[string]any{}
		for k, v := range data {
			raw[k] = v
		}
		for k, v := range caps {
			raw[k] = v
		}
		d := framework.NewFieldData(raw, r.Fields)
		if err := d.Validate(); err != nil {
			return nil, err
		}
		return r.Operations[op](context.Background(), &core.Request{Operation: op, Path: path, Data: data, Namespace: &ns}, d)
	}
	tb.Fatalf("no route for %s", path)
	return nil, nil
}

func TestNamespacesKeepTheirOwnIdentity(t *testing.T) {
	s := New(Config{Storage: storage.NewMemory(), Mounts: nsMounts{
		mounts: mounts{"auth_userpass_1": {"auth/userpass/", "userpass"}, "auth_userpass_a": {"hospital-a/auth/userpass/", "userpass"}},
		ns:     map[string][2]string{"auth_userpass_a": {hospA.ID, hospA.Path}},
	}, Now: (&testClock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}).Now})
	if err := s.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	b := NewBackend(s)
	root := mustLogin(t, s, "auth_userpass_1", "carol")
	inA := mustLogin(t, s, "auth_userpass_a", "carol")
	if root.EntityID == inA.EntityID {
		t.Fatal("the same user name in two namespaces shares an entity")
	}
	if inA.Identity.Actor != "hospital-a/userpass/carol" || root.Identity.Actor != "userpass/carol" {
		t.Fatalf("actors: root %q, hospital-a %q", root.Identity.Actor, inA.Identity.Actor)
	}
	// Names are unique per namespace: both may be called "carol".
	mustCall(t, b, core.OpUpdate, "entity/id/"+root.EntityID, map[string]any{"name": "carol"})
	if _, err := callIn(t, b, hospA, core.OpUpdate, "entity/id/"+inA.EntityID, map[string]any{"name": "carol"}); err != nil {
		t.Fatal(err)
	}
	// Reads, lists and lookups see only their namespace.
	if _, err := callIn(t, b, hospA, core.OpRead, "entity/id/"+root.EntityID, nil); core.CodeOf(err) != core.CodeNotFound {
		t.Fatalf("hospital-a read the root's entity: %v", err)
	}
	if _, err := call(t, b, core.OpRead, "entity/id/"+inA.EntityID, nil); core.CodeOf(err) != core.CodeNotFound {
		t.Fatalf("the root read hospital-a's entity: %v", err)
	}
	resp, err := callIn(t, b, hospA, core.OpUpdate, "lookup/entity", map[string]any{"name": "carol"})
	if err != nil || resp == nil || resp.Data["id"] != inA.EntityID || resp.Data["namespace_id"] != hospA.ID {
		t.Fatalf("lookup in hospital-a: %+v %v", resp, err)
	}
	list, err := callIn(t, b, hospA, core.OpList, "entity/id/", nil)
	if err != nil || len(list.Data["keys"].([]string)) != 1 {
		t.Fatalf("list in hospital-a: %+v %v", list, err)
	}
	// A group of hospital-a cannot take the root's entity, nor an alias
	// be put on a mount of another namespace.
	if _, err := callIn(t, b, hospA, core.OpUpdate, "group", map[string]any{"name": "g", "member_entity_ids": root.EntityID}); core.CodeOf(err) != core.CodeInvalid {
		t.Fatalf("cross-namespace member: %v", err)
	}
	if _, err := callIn(t, b, hospA, core.OpUpdate, "entity-alias", map[string]any{"name": "x", "mount_accessor": "auth_userpass_1"}); core.CodeOf(err) != core.CodeInvalid {
		t.Fatalf("alias on another namespace's mount: %v", err)
	}
	if _, err := callIn(t, b, hospA, core.OpUpdate, "entity/merge", map[string]any{"from_entity_ids": root.EntityID, "to_entity_id": inA.EntityID}); core.CodeOf(err) != core.CodeInvalid {
		t.Fatalf("cross-namespace merge: %v", err)
	}
	// Deleting the namespace's identity leaves the root's alone.
	if _, err := callIn(t, b, hospA, core.OpUpdate, "group", map[string]any{"name": "icu", "member_entity_ids": inA.EntityID}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteNamespace(context.Background(), hospA.ID); err != nil {
		t.Fatal(err)
	}
	if ids := s.EntityIDs("carol"); len(ids) != 1 || ids[0] != root.EntityID {
		t.Fatalf("after deleting hospital-a, carol is %v", ids)
	}
	if _, err := callIn(t, b, hospA, core.OpList, "group/id/", nil); core.CodeOf(err) != core.CodeNotFound {
		t.Fatalf("hospital-a's groups survived: %v", err)
	}
}
