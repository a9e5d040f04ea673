package namespace

import (
	"context"
	"errors"
	"testing"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/storage"
)

func MustStore(tb testing.TB) (*Store, *storage.Memory) {
	tb.Helper()
	mem := storage.NewMemory()
	s := New(mem, nil, nil)
	if err := s.Load(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return s, mem
}

func mustCreate(tb testing.TB, s *Store, parent core.Namespace, name string) *Entry {
	tb.Helper()
	e, created, err := s.Create(context.Background(), parent, name, nil, nil)
	if err != nil || !created {
		tb.Fatalf("create %s%s: created=%v err=%v", parent.Path, name, created, err)
	}
	return e
}

func TestResolve(t *testing.T) {
	s, _ := MustStore(t)
	a := mustCreate(t, s, core.RootNamespace, "a")
	ab := mustCreate(t, s, a.Namespace(), "b")
	mustCreate(t, s, core.RootNamespace, "ab")
	cases := []struct {
		header, path string
		want, rel    string
		err          error
	}{
		{"", "secret/data/x", "", "secret/data/x", nil},
		{"", "a/secret/data/x", "a/", "secret/data/x", nil},
		{"a", "secret/data/x", "a/", "secret/data/x", nil},
		{"/a/", "b/sys/mounts", "a/b/", "sys/mounts", nil},
		{"a/b", "sys/mounts", "a/b/", "sys/mounts", nil},
		{"", "a/b/c/secret", "a/b/", "c/secret", nil},
		{"root", "a/sys", "a/", "sys", nil},
		{"", "abc/x", "", "abc/x", nil},
		{"", "a", "", "a", nil},
		{"nope", "sys/mounts", "", "", core.ErrNamespaceNotFound},
		{"a/c", "sys/mounts", "", "", core.ErrNamespaceNotFound},
	}
	for _, c := range cases {
		e, rel, err := s.Resolve(c.header, c.path)
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Errorf("Resolve(%q, %q): err %v, want %v", c.header, c.path, err, c.err)
			}
			continue
		}
		got := ""
		if e != nil {
			got = e.Path
		}
		if err != nil || got != c.want || rel != c.rel {
			t.Errorf("Resolve(%q, %q) = %q, %q, %v; want %q, %q", c.header, c.path, got, rel, err, c.want, c.rel)
		}
	}
	if e, _, _ := s.Resolve("a/b", "x"); e == nil || e.ID != ab.ID {
		t.Fatalf("a/b resolved to %+v", e)
	}
}

func TestCreateRules(t *testing.T) {
	s, _ := MustStore(t)
	ctx := context.Background()
	for _, bad := range []string{"", "sys", "auth", "identity", "cubbyhole", "root", "audit", "a/b", "a b", "a*", "..", "a\u202eb"} {
		if _, _, err := s.Create(ctx, core.RootNamespace, bad, nil, nil); core.CodeOf(err) != core.CodeInvalid {
			t.Errorf("name %q: err %v, want invalid", bad, err)
		}
	}
	if _, _, err := s.Create(ctx, core.Namespace{ID: "zzz", Path: "missing/"}, "x", nil, nil); !errors.Is(err, core.ErrNamespaceNotFound) {
		t.Fatalf("create under a missing parent: %v", err)
	}
	conflict := func(p string) string {
		if p == "team/" {
			return "team/"
		}
		return ""
	}
	if _, _, err := s.Create(ctx, core.RootNamespace, "team", nil, conflict); core.CodeOf(err) != core.CodeInvalid {
		t.Fatalf("create over a mount: %v", err)
	}
	a := mustCreate(t, s, core.RootNamespace, "a")
	again, created, err := s.Create(ctx, core.RootNamespace, "a", nil, nil)
	if err != nil || created || again.ID != a.ID {
		t.Fatalf("repeated create: %+v created=%v %v", again, created, err)
	}
	if a.ID == core.RootNamespaceID || len(a.ID) != 6 {
		t.Fatalf("id %q", a.ID)
	}
}

func TestPersistAndReload(t *testing.T) {
	s, mem := MustStore(t)
	ctx := context.Background()
	a := mustCreate(t, s, core.RootNamespace, "a")
	mustCreate(t, s, a.Namespace(), "b")
	if _, err := s.SetMetadata(ctx, "a", map[string]string{"tenant": "hospital-a"}); err != nil {
		t.Fatal(err)
	}
	s2 := New(mem, nil, nil)
	if err := s2.Load(ctx); err != nil {
		t.Fatal(err)
	}
	got, ok := s2.ByPath("a/")
	if !ok || got.ID != a.ID || got.CustomMetadata["tenant"] != "hospital-a" {
		t.Fatalf("reloaded %+v", got)
	}
	if kids := s2.Children(core.RootNamespace, false); len(kids) != 1 || kids[0].Path != "a/" {
		t.Fatalf("children of root: %+v", kids)
	}
	if all := s2.All(); len(all) != 2 {
		t.Fatalf("all: %+v", all)
	}
	if err := s2.Remove(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok := s2.ByID(a.ID); ok {
		t.Fatal("removed namespace still there")
	}
	s.Invalidate([]string{StoragePrefix + a.UUID})
	s.WaitInvalidations()
	if _, ok := s.ByID(a.ID); ok {
		t.Fatal("another store did not see the removal after Invalidate")
	}
}

func TestLockUnlock(t *testing.T) {
	s, _ := MustStore(t)
	ctx := context.Background()
	a := mustCreate(t, s, core.RootNamespace, "a")
	ab := mustCreate(t, s, a.Namespace(), "b")
	key, err := s.Lock(ctx, "a/")
	if err != nil || key == "" {
		t.Fatalf("lock: %q %v", key, err)
	}
	if by, ok := s.LockedBy(ab.Namespace()); !ok || by.ID != a.ID {
		t.Fatalf("a/b/ should be locked by a/: %+v %v", by, ok)
	}
	if _, err := s.Lock(ctx, "a/b/"); err == nil {
		t.Fatal("locked a namespace inside a locked one")
	}
	if err := s.Unlock(ctx, "a/", "wrong", false); core.CodeOf(err) != core.CodeInvalid {
		t.Fatalf("wrong key: %v", err)
	}
	if err := s.Unlock(ctx, "a/", "", false); core.CodeOf(err) != core.CodeInvalid {
		t.Fatalf("empty key without sudo: %v", err)
	}
	if err := s.Unlock(ctx, "a/", key, false); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.LockedBy(ab.Namespace()); ok {
		t.Fatal("still locked")
	}
	if _, err := s.Lock(ctx, "a/b/"); err != nil {
		t.Fatal(err)
	}
	if err := s.Unlock(ctx, "a/b/", "", true); err != nil {
		t.Fatalf("sudo unlock: %v", err)
	}
	if _, ok := s.LockedBy(core.RootNamespace); ok {
		t.Fatal("root locked")
	}
}
