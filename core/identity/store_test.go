package identity

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/vigilsec/vigil/core"
)

func TestLoginCreatesEntityOnceAndWritesOnlyOnChange(t *testing.T) {
	s, st := mustStore(t)
	r1 := mustLogin(t, s, "auth_userpass_1", "carol")
	if !r1.Created || r1.EntityID == "" || r1.AliasID == "" {
		t.Fatalf("first login: %+v", r1)
	}
	if r1.Identity.EntityName != autoName("entity_", r1.EntityID) || r1.Identity.Actor != "userpass/carol" {
		t.Fatalf("auto-named entity: name %q actor %q", r1.Identity.EntityName, r1.Identity.Actor)
	}
	w := st.writes.Load()
	r2 := mustLogin(t, s, "auth_userpass_1", "CAROL") // alias names compare case-insensitively
	if r2.Created || r2.EntityID != r1.EntityID || r2.AliasID != r1.AliasID {
		t.Fatalf("second login: %+v, first %+v", r2, r1)
	}
	if got := st.writes.Load(); got != w {
		t.Fatalf("a repeated login wrote %d times", got-w)
	}
	// Metadata from the auth method is kept, and rewritten when it changes.
	if _, err := s.Login(context.Background(), "auth_userpass_1", &core.Alias{Name: "carol", Metadata: map[string]string{"k": "v"}}, nil); err != nil {
		t.Fatal(err)
	}
	if st.writes.Load() != w+1 {
		t.Fatal("changed alias metadata was not written")
	}
	// Another mount is another alias: another entity until merged.
	r3 := mustLogin(t, s, "auth_approle_2", "carol")
	if r3.EntityID == r1.EntityID {
		t.Fatal("aliases on two mounts share an entity before any merge")
	}
	if _, err := s.Login(context.Background(), "auth_userpass_1", &core.Alias{Name: " "}, nil); core.CodeOf(err) != core.CodeInvalid {
		t.Fatalf("nameless alias: %v", err)
	}
}

func TestResolveGroupsPoliciesAndDisabled(t *testing.T) {
	s, _ := mustStore(t)
	b := NewBackend(s)
	lr := mustLogin(t, s, "auth_userpass_1", "carol")
	// Name the entity: the actor becomes the name.
	mustCall(t, b, core.OpUpdate, "entity/id/"+lr.EntityID, map[string]any{"name": "carol", "policies": "own", "metadata": map[string]any{"team": "icu"}})
	parent := mustCall(t, b, core.OpUpdate, "group", map[string]any{"name": "clinicians", "policies": "clinical"})
	child := mustCall(t, b, core.OpUpdate, "group", map[string]any{"name": "icu-clinicians", "policies": "icu",
		"member_entity_ids": lr.EntityID})
	mustCall(t, b, core.OpUpdate, "group/id/"+parent["id"].(string), map[string]any{"member_group_ids": child["id"]})

	p, err := resolve(t, s, lr.EntityID, lr.AliasID, "default")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"clinical", "default", "icu", "own"}; !slices.Equal(p.Policies, want) {
		t.Fatalf("effective policies %v, want %v", p.Policies, want)
	}
	if !slices.Equal(p.TokenPolicies, []string{"default"}) {
		t.Fatalf("token policies changed: %v", p.TokenPolicies)
	}
	id := p.Identity
	if id.Actor != "carol" || id.EntityName != "carol" || id.Alias != "userpass/carol" || id.Metadata["team"] != "icu" {
		t.Fatalf("identity %+v", id)
	}
	if !slices.Equal(id.Groups, []string{"clinicians", "icu-clinicians"}) {
		t.Fatalf("groups %v (inherited parent expected)", id.Groups)
	}
	// Membership removed: the next resolution no longer has the policies.
	mustCall(t, b, core.OpUpdate, "group/name/icu-clinicians", map[string]any{"member_entity_ids": ""})
	p, _ = resolve(t, s, lr.EntityID, lr.AliasID, "default")
	if want := []string{"default", "own"}; !slices.Equal(p.Policies, want) || len(p.Identity.Groups) != 0 {
		t.Fatalf("after removal: policies %v groups %v", p.Policies, p.Identity.Groups)
	}
	// A root token keeps only root.
	p, _ = resolve(t, s, lr.EntityID, lr.AliasID, "root")
	p.Root = true
	p.Policies = []string{"root"}
	if err := s.Resolve(p); err != nil || !slices.Equal(p.Policies, []string{"root"}) {
		t.Fatalf("root: %v %v", p.Policies, err)
	}
	// Disabled: logins and requests are refused.
	mustCall(t, b, core.OpUpdate, "entity/name/carol", map[string]any{"disabled": true})
	if _, err := resolve(t, s, lr.EntityID, lr.AliasID, "default"); !errors.Is(err, ErrEntityDisabled) || core.CodeOf(err) != core.CodePermissionDenied {
		t.Fatalf("disabled entity resolved: %v", err)
	}
	if _, err := s.Login(context.Background(), "auth_userpass_1", &core.Alias{Name: "carol"}, nil); !errors.Is(err, ErrEntityDisabled) {
		t.Fatalf("disabled entity logged in: %v", err)
	}
	// Tokens without an entity, or of a deleted one, are left alone.
	mustCall(t, b, core.OpDelete, "entity/name/carol", nil)
	p, err = resolve(t, s, lr.EntityID, lr.AliasID, "default")
	if err != nil || p.Identity != nil || !slices.Equal(p.Policies, []string{"default"}) {
		t.Fatalf("deleted entity: %+v %v", p, err)
	}
}

func TestExternalGroupsFollowLogins(t *testing.T) {
	s, _ := mustStore(t)
	b := NewBackend(s)
	g := mustCall(t, b, core.OpUpdate, "group", map[string]any{"name": "icu-oidc", "type": "external", "policies": "icu"})
	gid := g["id"].(string)
	mustCall(t, b, core.OpUpdate, "group-alias", map[string]any{"name": "ICU", "mount_accessor": "auth_oidc_3", "canonical_id": gid})
	if _, err := call(t, b, core.OpUpdate, "group/id/"+gid, map[string]any{"member_entity_ids": "x"}); core.CodeOf(err) != core.CodeInvalid {
		t.Fatalf("members set on an external group: %v", err)
	}
	lr := mustLogin(t, s, "auth_oidc_3", "dave", "icu", "unmapped")
	p, _ := resolve(t, s, lr.EntityID, lr.AliasID, "default")
	if !slices.Equal(p.Identity.Groups, []string{"icu-oidc"}) || !slices.Contains(p.Policies, "icu") {
		t.Fatalf("external group not joined: %+v", p.Identity)
	}
	// The same group name from another mount means nothing.
	other := mustLogin(t, s, "auth_userpass_1", "erin", "ICU")
	if p, _ := resolve(t, s, other.EntityID, other.AliasID); len(p.Identity.Groups) != 0 {
		t.Fatalf("group alias matched on another mount: %v", p.Identity.Groups)
	}
	// The next login without the group leaves it.
	mustLogin(t, s, "auth_oidc_3", "dave")
	p, _ = resolve(t, s, lr.EntityID, lr.AliasID, "default")
	if len(p.Identity.Groups) != 0 || slices.Contains(p.Policies, "icu") {
		t.Fatalf("external group kept after the claim went away: %+v", p.Identity)
	}
	ga := mustCall(t, b, core.OpRead, "group/id/"+gid, nil)["alias"].(map[string]any)
	if ga["mount_path"] != "auth/oidc/" || ga["mount_type"] != "oidc" || ga["name"] != "ICU" {
		t.Fatalf("group alias read: %v", ga)
	}
	if _, err := call(t, b, core.OpUpdate, "group-alias", map[string]any{"name": "x", "mount_accessor": "auth_oidc_3",
		"canonical_id": mustCall(t, b, core.OpUpdate, "group", map[string]any{"name": "int"})["id"]}); core.CodeOf(err) != core.CodeInvalid {
		t.Fatalf("alias on an internal group: %v", err)
	}
}

func TestGroupCyclesRefused(t *testing.T) {
	s, _ := mustStore(t)
	b := NewBackend(s)
	a := mustCall(t, b, core.OpUpdate, "group", map[string]any{"name": "a"})["id"].(string)
	bb := mustCall(t, b, core.OpUpdate, "group", map[string]any{"name": "b", "member_group_ids": a})["id"].(string)
	c := mustCall(t, b, core.OpUpdate, "group", map[string]any{"name": "c", "member_group_ids": bb})["id"].(string)
	for _, m := range []string{c, a} {
		if _, err := call(t, b, core.OpUpdate, "group/id/"+a, map[string]any{"member_group_ids": m}); core.CodeOf(err) != core.CodeInvalid {
			t.Fatalf("cycle through %s accepted: %v", m, err)
		}
	}
	read := mustCall(t, b, core.OpRead, "group/name/b", nil)
	if !slices.Equal(read["parent_group_ids"].([]string), []string{c}) || !slices.Equal(read["member_group_ids"].([]string), []string{a}) {
		t.Fatalf("group b: %v", read)
	}
	// Deleting a member group removes it from its parents.
	mustCall(t, b, core.OpDelete, "group/id/"+a, nil)
	if got := mustCall(t, b, core.OpRead, "group/name/b", nil)["member_group_ids"].([]string); len(got) != 0 {
		t.Fatalf("deleted group still a member: %v", got)
	}
}

func TestMergeKeepsEveryIDOfThePerson(t *testing.T) {
	s, _ := mustStore(t)
	b := NewBackend(s)
	up := mustLogin(t, s, "auth_userpass_1", "carol")
	ar := mustLogin(t, s, "auth_approle_2", "role-id-1")
	mustCall(t, b, core.OpUpdate, "entity/id/"+up.EntityID, map[string]any{"name": "carol"})
	g := mustCall(t, b, core.OpUpdate, "group", map[string]any{"name": "ops", "policies": "ops", "member_entity_ids": ar.EntityID})
	mustCall(t, b, core.OpUpdate, "entity/merge", map[string]any{"from_entity_ids": ar.EntityID, "to_entity_id": up.EntityID})

	if got := s.EntityIDs("carol"); !slices.Equal(got, []string{up.EntityID, ar.EntityID}) {
		t.Fatalf("EntityIDs(carol) = %v", got)
	}
	if got := s.EntityIDs(ar.EntityID); !slices.Equal(got, []string{up.EntityID, ar.EntityID}) {
		t.Fatalf("EntityIDs(merged id) = %v", got)
	}
	if s.EntityIDs("nobody") != nil {
		t.Fatal("EntityIDs of an unknown name")
	}
	// A token of the merged entity resolves to the survivor, with its groups.
	p, err := resolve(t, s, ar.EntityID, ar.AliasID, "default")
	if err != nil || p.EntityID != up.EntityID || p.Identity.Actor != "carol" || !slices.Contains(p.Policies, "ops") {
		t.Fatalf("merged token: %+v %+v %v", p, p.Identity, err)
	}
	// Both logins now find the one entity.
	if r := mustLogin(t, s, "auth_approle_2", "role-id-1"); r.EntityID != up.EntityID {
		t.Fatalf("approle login after merge: %s", r.EntityID)
	}
	ent := mustCall(t, b, core.OpRead, "entity/name/carol", nil)
	if len(ent["aliases"].([]any)) != 2 || !slices.Equal(ent["merged_entity_ids"].([]string), []string{ar.EntityID}) ||
		!slices.Equal(ent["group_ids"].([]string), []string{g["id"].(string)}) {
		t.Fatalf("merged entity: %v", ent)
	}
	if resp, _ := call(t, b, core.OpRead, "entity/id/"+ar.EntityID, nil); resp != nil {
		t.Fatal("merged-away entity still readable by id")
	}
	// Two aliases on one mount conflict unless one is chosen.
	up2 := mustLogin(t, s, "auth_userpass_1", "carol2")
	if _, err := call(t, b, core.OpUpdate, "entity/merge", map[string]any{"from_entity_ids": up2.EntityID, "to_entity_id": up.EntityID}); core.CodeOf(err) != core.CodeInvalid {
		t.Fatalf("conflicting merge: %v", err)
	}
	mustCall(t, b, core.OpUpdate, "entity/merge", map[string]any{"from_entity_ids": up2.EntityID, "to_entity_id": up.EntityID,
		"conflicting_alias_ids_to_keep": up.AliasID})
	if r := mustLogin(t, s, "auth_userpass_1", "carol2"); !r.Created {
		t.Fatal("the dropped alias still maps to an entity")
	}
}

func TestEntityAndAliasAPI(t *testing.T) {
	s, _ := mustStore(t)
	b := NewBackend(s)
	e := mustCall(t, b, core.OpUpdate, "entity", map[string]any{"name": "bob", "policies": "a,b"})
	id := e["id"].(string)
	if e["name"] != "bob" {
		t.Fatalf("create: %v", e)
	}
	// An update of an existing entity answers 204 (nil).
	if d := mustCall(t, b, core.OpUpdate, "entity", map[string]any{"name": "bob", "metadata": "k=v"}); d != nil {
		t.Fatalf("update answered %v", d)
	}
	if _, err := call(t, b, core.OpUpdate, "entity", map[string]any{"name": "x", "policies": "root"}); core.CodeOf(err) != core.CodeInvalid {
		t.Fatalf("root policy accepted: %v", err)
	}
	other := mustCall(t, b, core.OpUpdate, "entity", map[string]any{"name": "other"})["id"].(string)
	if _, err := call(t, b, core.OpUpdate, "entity/id/"+other, map[string]any{"name": "BOB"}); core.CodeOf(err) != core.CodeInvalid {
		t.Fatalf("duplicate name accepted: %v", err)
	}
	al := mustCall(t, b, core.OpUpdate, "entity-alias", map[string]any{"name": "bob", "mount_accessor": "auth_userpass_1", "canonical_id": id})
	if al["canonical_id"] != id {
		t.Fatalf("alias: %v", al)
	}
	if _, err := call(t, b, core.OpUpdate, "entity-alias", map[string]any{"name": "bob2", "mount_accessor": "auth_userpass_1", "canonical_id": id}); core.CodeOf(err) != core.CodeInvalid {
		t.Fatalf("second alias on one mount accepted: %v", err)
	}
	if _, err := call(t, b, core.OpUpdate, "entity-alias", map[string]any{"name": "z", "mount_accessor": "nope"}); core.CodeOf(err) != core.CodeInvalid {
		t.Fatalf("unknown accessor accepted: %v", err)
	}
	// A login with the pre-created alias finds bob.
	if r := mustLogin(t, s, "auth_userpass_1", "bob"); r.EntityID != id || r.Identity.Actor != "bob" {
		t.Fatalf("login with a pre-created alias: %+v", r)
	}
	ar := mustCall(t, b, core.OpRead, "entity-alias/id/"+al["id"].(string), nil)
	if ar["mount_path"] != "auth/userpass/" || ar["name"] != "bob" {
		t.Fatalf("alias read: %v", ar)
	}
	// Move the alias to the other entity.
	mustCall(t, b, core.OpUpdate, "entity-alias/id/"+al["id"].(string), map[string]any{"canonical_id": other})
	if r := mustLogin(t, s, "auth_userpass_1", "bob"); r.EntityID != other {
		t.Fatalf("moved alias logs in as %s", r.EntityID)
	}
	// Lookups.
	lk := mustCall(t, b, core.OpUpdate, "lookup/entity", map[string]any{"alias_name": "BOB", "alias_mount_accessor": "auth_userpass_1"})
	if lk["id"] != other {
		t.Fatalf("lookup by alias: %v", lk)
	}
	if d := mustCall(t, b, core.OpUpdate, "lookup/entity", map[string]any{"name": "nobody"}); d != nil {
		t.Fatalf("lookup of nobody: %v", d)
	}
	if _, err := call(t, b, core.OpUpdate, "lookup/entity", map[string]any{"name": "bob", "id": id}); core.CodeOf(err) != core.CodeInvalid {
		t.Fatalf("two criteria accepted: %v", err)
	}
	list := mustCall(t, b, core.OpList, "entity/name", nil)
	if !slices.Equal(list["keys"].([]string), []string{"bob", "other"}) {
		t.Fatalf("list: %v", list)
	}
	mustCall(t, b, core.OpUpdate, "entity/batch-delete", map[string]any{"entity_ids": []any{id, other}})
	if _, err := call(t, b, core.OpList, "entity/id", nil); core.CodeOf(err) != core.CodeNotFound {
		t.Fatalf("empty list: %v", err)
	}
}

func TestLoadAndInvalidateAcrossStores(t *testing.T) {
	a, st := mustStore(t)
	lr := mustLogin(t, a, "auth_userpass_1", "carol")
	mustCall(t, NewBackend(a), core.OpUpdate, "group", map[string]any{"name": "g", "policies": "p", "member_entity_ids": lr.EntityID})

	// A second node over the same storage loads everything ...
	b := New(Config{Storage: st, Mounts: testMounts})
	if err := b.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	p, _ := resolve(t, b, lr.EntityID, lr.AliasID)
	if !slices.Equal(p.Policies, []string{"p"}) {
		t.Fatalf("loaded policies %v", p.Policies)
	}
	// ... and follows changes it is told about.
	mustCall(t, NewBackend(a), core.OpUpdate, "group/name/g", map[string]any{"policies": "q"})
	b.Invalidate(st.Memory.Keys())
	b.WaitInvalidations()
	p, _ = resolve(t, b, lr.EntityID, lr.AliasID)
	if !slices.Equal(p.Policies, []string{"q"}) {
		t.Fatalf("after invalidation: %v", p.Policies)
	}
	mustCall(t, NewBackend(a), core.OpDelete, "entity/id/"+lr.EntityID, nil)
	b.Invalidate([]string{entityPrefix + lr.EntityID})
	b.WaitInvalidations()
	if p, _ := resolve(t, b, lr.EntityID, lr.AliasID); p.Identity != nil {
		t.Fatal("deleted entity still resolved after invalidation")
	}
	b.Invalidate(nil) // a snapshot restore reloads everything
	b.WaitInvalidations()
	// Sealed: nothing resolves, writes fail.
	b.Clear()
	if err := b.Resolve(&core.Principal{EntityID: "x"}); !errors.Is(err, core.ErrSealed) {
		t.Fatalf("resolve while sealed: %v", err)
	}
}
