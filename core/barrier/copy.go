package barrier

import (
	"context"
	"errors"
	"fmt"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/storage"
)

// KeySource tells how OpenCopy opened a copy of the storage.
type KeySource string

const (
	// KeysFromRootKey: this barrier's root key decrypted the copy's own
	// keyring, exactly as the cluster's unseal keys (or its auto seal)
	// would after a restore.
	KeysFromRootKey KeySource = "root-key"
	// KeysFromLiveKeyring: the root key has changed since the copy was
	// made (a rekey), so the copy's keyring did not open; its values are
	// read with this barrier's keyring, which holds every term the copy
	// can use (rotation only ever adds terms). Restoring the copy on a
	// new cluster needs the unseal keys that were in force when it was
	// made.
	KeysFromLiveKeyring KeySource = "live-keyring"
)

// OpenCopy returns an unsealed barrier over physical, a copy of this
// barrier's storage (a restored snapshot), opened with the keys this
// barrier holds, so that no key share and no person is needed: first this
// barrier's root key on the copy's keyring, and when that key no longer
// opens it, a copy of this barrier's keyring. It reports which one
// worked. The copy's keys are independent of this barrier's: Seal the
// returned barrier when done. Errors: core.ErrSealed when this barrier is
// sealed, core.ErrNotInitialized when the copy has no keyring, an error
// wrapping ErrBadRootKey when neither key source opens it, and a
// CodeInternal error for a malformed keyring.
func (b *Barrier) OpenCopy(ctx context.Context, physical storage.Storage) (*Barrier, KeySource, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.ring == nil {
		return nil, "", core.ErrSealed
	}
	c := New(physical, WithNow(b.now))
	ring, err := c.load(ctx, b.rootKey)
	switch {
	case err == nil:
		c.rootKey, c.ring = append([]byte(nil), b.rootKey...), ring
		return c, KeysFromRootKey, nil
	case !errors.Is(err, ErrBadRootKey):
		return nil, "", err
	}
	ring, err = b.ring.clone()
	if err != nil {
		return nil, "", err
	}
	// A value under a term this keyring lacks (a copy of another
	// cluster) fails to decrypt with ErrDecrypt when it is read.
	c.rootKey, c.ring = append([]byte(nil), b.rootKey...), ring
	return c, KeysFromLiveKeyring, nil
}

// clone returns a deep copy of r: zeroing the copy leaves r intact.
func (r *keyring) clone() (*keyring, error) {
	out := &keyring{keys: make(map[uint32]*dataKey, len(r.keys))}
	for t, k := range r.keys {
		nk, err := newDataKey(t, append([]byte(nil), k.value...), k.installed)
		if err != nil {
			out.zero()
			return nil, fmt.Errorf("barrier: copy keyring: %w", err)
		}
		out.keys[t] = nk
		if k == r.active {
			out.active = nk
		}
	}
	return out, nil
}
