package token

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"
)

// decodeCache remembers the decoding of recently read token entries. It is
// not a cache of token state: Store.get still reads every entry from
// storage (so a revocation, renewal or use-count change is seen at once,
// whichever node made it), and reuses a decoded entry only when the stored
// bytes are identical to the ones it was decoded from. It saves the JSON
// decoding, most of a token lookup's cost, on the hot path where the same
// tokens authenticate request after request. Safe for concurrent use.
type decodeCache struct {
	mu sync.Mutex
	m  map[string]*decoded // by token hash
}

type decoded struct {
	raw []byte
	e   Entry
}

// maxDecoded bounds the cache; a full cache forgets an arbitrary entry.
const maxDecoded = 1024

// decode returns the entry stored as b under idPrefix+hash, decoding b
// only if it differs from what was last decoded for hash. The result is
// the caller's to modify.
func (c *decodeCache) decode(hash string, b []byte) (*Entry, error) {
	c.mu.Lock()
	d := c.m[hash]
	c.mu.Unlock()
	if d != nil && bytes.Equal(d.raw, b) {
		return d.e.clone(), nil
	}
	d = &decoded{raw: bytes.Clone(b)} // b may be the storage's own buffer
	if err := json.Unmarshal(b, &d.e); err != nil {
		return nil, fmt.Errorf("storage: decode %q: %w", idPrefix+hash, err)
	}
	c.mu.Lock()
	if c.m == nil {
		c.m = make(map[string]*decoded)
	}
	if _, ok := c.m[hash]; !ok && len(c.m) >= maxDecoded {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[hash] = d
	c.mu.Unlock()
	return d.e.clone(), nil
}

// forget drops what is cached for hash.
func (c *decodeCache) forget(hash string) {
	c.mu.Lock()
	delete(c.m, hash)
	c.mu.Unlock()
}

// purge drops everything (e.g. when storage fails, as it does once sealed:
// nothing decoded stays in memory longer than it is readable).
func (c *decodeCache) purge() {
	c.mu.Lock()
	clear(c.m)
	c.mu.Unlock()
}

// clone copies e deeply enough that the copy can be modified without
// touching e: its slices and maps are copied (InternalData one level).
func (e *Entry) clone() *Entry {
	c := *e
	c.Policies = slices.Clone(e.Policies)
	c.Meta = maps.Clone(e.Meta)
	c.InternalData = maps.Clone(e.InternalData)
	c.BoundCIDRs = slices.Clone(e.BoundCIDRs)
	return &c
}
