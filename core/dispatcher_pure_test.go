package core

import (
	"testing"
	"time"
)

// TestSideEffectFreeNeedsTheRouteAndAPlainRequest: only operations the
// route lists qualify, and never a request whose handling has side effects
// of its own (held for approval, wrapped, spending a wrapping token), nor a
// fail-safe or unknown route.
func TestSideEffectFreeNeedsTheRouteAndAPlainRequest(t *testing.T) {
	route := func() *Target { return &Target{Found: true, SideEffectFree: []Operation{OpRead}} }
	read := func() *Request { return &Request{Operation: OpRead} }
	if !sideEffectFree(route(), read(), false) {
		t.Fatal("a listed read does not qualify")
	}
	for name, c := range map[string]struct {
		t    *Target
		r    *Request
		hold bool
	}{
		"unlisted operation": {route(), &Request{Operation: OpUpdate}, false},
		"no list (default)":  {&Target{Found: true}, read(), false},
		"unknown path":       {&Target{SideEffectFree: []Operation{OpRead}}, read(), false},
		"fail-safe":          {&Target{Found: true, FailSafe: true, SideEffectFree: []Operation{OpRead}}, read(), false},
		"held for approval":  {route(), read(), true},
		"wrapped response":   {route(), &Request{Operation: OpRead, WrapTTL: time.Minute}, false},
		"spends wrap token":  {route(), &Request{Operation: OpRead, DeferTokenUse: true}, false},
	} {
		if sideEffectFree(c.t, c.r, c.hold) {
			t.Errorf("%s: treated as side-effect free", name)
		}
	}
}
