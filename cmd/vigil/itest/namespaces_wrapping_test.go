package itest

import (
	"net/http"
	"testing"
)

// TestNamespaceWrapping: a response wrapped in hospital-a is wrapped by a
// token of hospital-a. Another namespace's token, or the root namespace,
// cannot look it up or unwrap it (the token is unknown there); in
// hospital-a it unwraps once through vault/api, by the wrapping token
// itself (its response-wrapping policy applies under hospital-a's path),
// and cubbyholes stay per token.
func TestNamespaceWrapping(t *testing.T) {
	qs, _ := nsServer(t)
	s := qs.Server
	tokA := tenant(t, s, "", "hospital-a")
	tokB := tenant(t, s, "", "hospital-b")
	wrap := func() string {
		t.Helper()
		ca := in(s, tokA, "hospital-a")
		ca.SetWrappingLookupFunc(func(string, string) string { return "5m" })
		w, err := ca.Logical().Read("secret/data/ward")
		if err != nil || w == nil || w.WrapInfo == nil {
			t.Fatalf("wrap in hospital-a: %+v %v", w, err)
		}
		return w.WrapInfo.Token
	}
	wt := wrap()
	for _, c := range []struct{ who, token, ns string }{
		{"B's token in hospital-b", tokB, "hospital-b"},
		{"the root token in the root namespace", s.RootToken, ""},
	} {
		_, err := in(s, c.token, c.ns).Logical().Write("sys/wrapping/lookup", map[string]any{"token": wt})
		if st := statusOf(err); st != http.StatusBadRequest && st != http.StatusForbidden {
			t.Errorf("%s looks up hospital-a's wrapping token: %v", c.who, err)
		}
		if r, err := in(s, c.token, c.ns).Logical().Unwrap(wt); err == nil || r != nil {
			t.Fatalf("%s unwraps hospital-a's wrapped response: %+v %v", c.who, r, err)
		}
	}
	if _, err := in(s, "", "hospital-b").Logical().Unwrap(wt); statusOf(err) != http.StatusForbidden {
		t.Fatalf("the wrapping token used as a token in hospital-b: %v", err)
	}
	// In hospital-a: by the wrapping token itself, once.
	r, err := in(s, "", "hospital-a").Logical().Unwrap(wt)
	if err != nil || r == nil || r.Data["data"].(map[string]any)["patient"] != "hospital-a" {
		t.Fatalf("unwrap in hospital-a: %+v %v", r, err)
	}
	if r, err := in(s, "", "hospital-a").Logical().Unwrap(wt); err == nil && r != nil {
		t.Fatal("a wrapping token unwrapped twice")
	}
	// By a third party of hospital-a (the token in the body).
	if r, err := in(s, tokA, "hospital-a").Logical().Unwrap(wrap()); err != nil || r == nil {
		t.Fatalf("third-party unwrap in hospital-a: %+v %v", r, err)
	}
	// Cubbyholes are per token.
	mustWrite(t, in(s, tokA, "hospital-a"), "cubbyhole/note", map[string]any{"v": "a"})
	if r, err := in(s, tokB, "hospital-b").Logical().Read("cubbyhole/note"); err != nil || r != nil {
		t.Fatalf("B reads A's cubbyhole: %+v %v", r, err)
	}
	if r, err := in(s, tokA, "hospital-a").Logical().Read("cubbyhole/note"); err != nil || r == nil || r.Data["v"] != "a" {
		t.Fatalf("A's cubbyhole: %+v %v", r, err)
	}
}
