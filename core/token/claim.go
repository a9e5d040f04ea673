package token

import (
	"context"
	"slices"
)

// WrappingPolicy is the one policy of a response-wrapping token (Vault's
// "response-wrapping"): it allows sys/wrapping/unwrap and nothing else.
const WrappingPolicy = "response-wrapping"

// IsWrapping reports whether e is a response-wrapping token.
func (e *Entry) IsWrapping() bool {
	return len(e.Policies) == 1 && e.Policies[0] == WrappingPolicy
}

// Claim spends a single-use token — a response-wrapping token being
// unwrapped or rewrapped. Under the lock that serialises token uses it
// looks the live token up, calls fn with its entry, and when fn returns nil
// revokes the token (its cubbyhole goes with it, see Config.Cubbyholes).
// fn may refuse by returning an error: the token is then left as it was
// and Claim returns that error. fn must copy out what it needs from the
// token's cubbyhole, which is gone once Claim returns.
//
// Two concurrent Claims of one token, or a Claim and any other use of it,
// never both succeed. Claim returns found=false (and a nil error) when the
// token is unknown, expired or already spent; fn is then not called.
func (s *Store) Claim(ctx context.Context, raw string, fn func(e *Entry) error) (found bool, err error) {
	s.useMu.Lock()
	defer s.useMu.Unlock()
	e, err := s.Lookup(ctx, raw)
	if err != nil || e == nil {
		return false, err
	}
	c := *e
	c.Policies = slices.Clone(e.Policies)
	if err := fn(&c); err != nil {
		return true, err
	}
	return true, s.revokeTree(ctx, e.Hash)
}
