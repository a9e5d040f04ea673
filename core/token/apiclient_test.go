package token_test

// Integration tests: a real in-process Vigil server on a loopback port,
// driven with the official vault/api client. An external test package, so
// that it can import the server wiring (which imports this package).

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/cmd/vigil/wire"
	"github.com/vigilsec/vigil/core/server/servertest"
)

func devServer(t *testing.T) *servertest.Server {
	t.Helper()
	return servertest.MustStart(t, wire.Options, servertest.Options{Dev: true})
}

func statusOf(err error) int {
	var re *vaultapi.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

// lookupOrphan reports whether tok is an orphan (as auth/token/lookup says).
func lookupOrphan(t *testing.T, c *vaultapi.Client, tok string) bool {
	t.Helper()
	sec, err := c.Auth().Token().Lookup(tok)
	if err != nil {
		t.Fatalf("lookup: %v", err)
	}
	o, ok := sec.Data["orphan"].(bool)
	if !ok {
		t.Fatalf("lookup: no orphan flag in %v", sec.Data)
	}
	return o
}

// A token created with no_parent=true must not make later tokens orphans:
// whether a token has a parent is decided per request. Orphan and
// non-orphan creations run concurrently; every non-orphan child must still
// be revoked with its parent.
func TestTokenCreateOrphanDoesNotLeakBetweenRequests(t *testing.T) {
	s := devServer(t)
	root := s.Client
	if err := root.Sys().PutPolicy("creator", `path "auth/token/create" { capabilities = ["update"] }`); err != nil {
		t.Fatal(err)
	}

	// Sequentially first: one orphan, then a child that asks for a parent.
	orphan, err := root.Auth().Token().Create(&vaultapi.TokenCreateRequest{NoParent: true, Policies: []string{"creator"}})
	if err != nil {
		t.Fatal(err)
	}
	if !orphan.Auth.Orphan || !lookupOrphan(t, root, orphan.Auth.ClientToken) {
		t.Fatal("no_parent=true did not create an orphan")
	}
	child, err := root.Auth().Token().Create(&vaultapi.TokenCreateRequest{NoParent: false, Policies: []string{"creator"}})
	if err != nil {
		t.Fatal(err)
	}
	if child.Auth.Orphan || lookupOrphan(t, root, child.Auth.ClientToken) {
		t.Fatal("a token created after an orphan, with no_parent=false, is an orphan")
	}

	// Then interleaved: root creates orphans while a parent creates children.
	parent, err := root.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: []string{"creator"}})
	if err != nil {
		t.Fatal(err)
	}
	pc := s.NewClient(parent.Auth.ClientToken)
	const n = 12
	var wg sync.WaitGroup
	var mu sync.Mutex
	var orphans, children []string
	errs := make(chan error, 2*n)
	for i := range n {
		wg.Add(2)
		go func() {
			defer wg.Done()
			sec, err := root.Auth().Token().Create(&vaultapi.TokenCreateRequest{NoParent: true, Policies: []string{"creator"}})
			if err != nil {
				errs <- fmt.Errorf("orphan %d: %w", i, err)
				return
			}
			mu.Lock()
			orphans = append(orphans, sec.Auth.ClientToken)
			mu.Unlock()
		}()
		go func() {
			defer wg.Done()
			sec, err := pc.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: []string{"creator"}})
			if err != nil {
				errs <- fmt.Errorf("child %d: %w", i, err)
				return
			}
			if sec.Auth.Orphan {
				errs <- fmt.Errorf("child %d: created as an orphan", i)
			}
			mu.Lock()
			children = append(children, sec.Auth.ClientToken)
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	for _, tok := range children {
		if lookupOrphan(t, root, tok) {
			t.Fatalf("child %s… is stored as an orphan", tok[:8])
		}
	}
	for _, tok := range orphans {
		if !lookupOrphan(t, root, tok) {
			t.Fatalf("orphan %s… is stored with a parent", tok[:8])
		}
	}

	// Revoking the parent revokes every child, and no orphan.
	if err := root.Auth().Token().RevokeTree(parent.Auth.ClientToken); err != nil {
		t.Fatal(err)
	}
	for _, tok := range children {
		if _, err := root.Auth().Token().Lookup(tok); statusOf(err) != 403 {
			t.Fatalf("child still valid after its parent was revoked: %v", err)
		}
	}
	for _, tok := range orphans {
		if !lookupOrphan(t, root, tok) {
			t.Fatal("orphan changed")
		}
	}
}
