package router

import (
	"context"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/storage"
)

func TestNamespacedMounts(t *testing.T) {
	ctx := context.Background()
	st := storage.NewMemory()
	r := newRouter()
	r.cfg.Storage = st
	nsA := core.Namespace{ID: "AAAAAA", Path: "hospital-a/"}
	nsB := core.Namespace{ID: "BBBBBB", Path: "hospital-b/"}
	namespaces := []string{nsA.Path, nsB.Path}
	r.SetNamespaceConflict(func(ns core.Namespace, p string) string {
		for _, n := range namespaces {
			if strings.HasPrefix(n, p) || strings.HasPrefix(p, n) && !strings.HasPrefix(ns.Path, n) {
				return n
			}
		}
		return ""
	})
	if err := r.MountStatic(ctx, &MountEntry{Path: "sys/", Type: "system", Class: "secret"}, &echo{}, "sys/"); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []core.Namespace{core.RootNamespace, nsA, nsB} {
		e := &MountEntry{Path: "secret", Type: "echo", NamespaceID: ns.ID, NamespacePath: ns.Path}
		if err := r.Mount(ctx, e); err != nil {
			t.Fatalf("mount secret/ in %q: %v", ns.Path, err)
		}
		if e.Path != ns.Path+"secret/" {
			t.Fatalf("full path %q", e.Path)
		}
	}
	// A root mount may not hide or cut into a namespace, nor a namespace's
	// mount hide a built-in one.
	for _, bad := range []*MountEntry{{Path: "hospital-a", Type: "echo"}, {Path: "hospital-a/x", Type: "echo"}} {
		if err := r.Mount(ctx, bad); core.CodeOf(err) != core.CodeInvalid {
			t.Errorf("root mount at %s: %v", bad.Path, err)
		}
	}
	if err := r.Mount(ctx, &MountEntry{Path: "sys/x", Type: "echo", NamespaceID: nsA.ID, NamespacePath: nsA.Path}); core.CodeOf(err) != core.CodeInvalid {
		t.Errorf("namespace mount over sys/: %v", err)
	}
	// Each namespace resolves its own mount; the built-in one in all.
	for _, ns := range []core.Namespace{core.RootNamespace, nsA, nsB} {
		res, err := r.ResolveIn(ns, "secret/item/x", false)
		if err != nil || res.Mount.Path != ns.Path+"secret/" || res.MountPath != "item/x" {
			t.Fatalf("%q: %+v %v", ns.Path, res, err)
		}
		res, err = r.ResolveIn(ns, "sys/item/y", false)
		if err != nil || res.Mount.Path != ns.Path+"sys/" || res.Mount.Type != "system" {
			t.Fatalf("%q sys/: %+v %v", ns.Path, res, err)
		}
		if got := r.MountsIn(ns, "secret"); len(got) != 2 || got[0].Path != "secret/" || got[1].Path != "sys/" {
			t.Fatalf("%q mounts: %+v", ns.Path, got)
		}
	}
	if err := r.Mount(ctx, &MountEntry{Path: "hospital", Type: "echo"}); err != nil {
		t.Fatalf("a root mount beside the namespaces: %v", err)
	}
	// Never another namespace's mount, however the path is written.
	if _, err := r.Resolve("hospital-a/secret/item/x"); core.CodeOf(err) != core.CodeNotFound {
		t.Fatalf("root resolved a namespace's mount: %v", err)
	}
	if _, err := r.ResolveIn(nsA, "../hospital-b/secret/item/x", false); core.CodeOf(err) != core.CodeNotFound {
		t.Fatalf("escaped: %v", err)
	}
	if got := r.NamespaceMounts(nsA.ID); len(got) != 1 || got[0] != "hospital-a/secret/" {
		t.Fatalf("namespace mounts: %v", got)
	}
	// The table reloads with the namespaces.
	r2 := newRouter()
	r2.cfg.Storage = st
	if err := r2.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if res, err := r2.ResolveIn(nsB, "secret/item/x", false); err != nil || res.Mount.NamespaceID != nsB.ID {
		t.Fatalf("after reload: %+v %v", res, err)
	}
	if id, p, ok := r2.MountNamespace(r2.MountsIn(nsB, "secret")[0].Accessor); !ok || id != nsB.ID || p != nsB.Path {
		t.Fatalf("mount namespace: %s %s %v", id, p, ok)
	}
}
