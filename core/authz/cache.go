package authz

import (
	"hash/maphash"
	"sync"

	"github.com/vigilsec/vigil/core"
)

const cacheShards = 32

// decisionCache maps cache keys to decisions. It belongs to one policy
// revision (a state): a policy change builds a new state with an empty
// cache, which is how every change invalidates it. Each shard holds at most
// max/cacheShards entries and is emptied when full. Safe for concurrent use.
type decisionCache struct {
	seed     maphash.Seed
	perShard int
	shards   [cacheShards]struct {
		mu sync.RWMutex
		m  map[string]*core.Decision
	}
}

func newDecisionCache(max int) *decisionCache {
	if max <= 0 {
		return nil
	}
	c := &decisionCache{seed: maphash.MakeSeed(), perShard: max/cacheShards + 1}
	for i := range c.shards {
		c.shards[i].m = map[string]*core.Decision{}
	}
	return c
}

func (c *decisionCache) shard(key string) int {
	return int(maphash.String(c.seed, key) % cacheShards)
}

func (c *decisionCache) get(key string) *core.Decision {
	if c == nil {
		return nil
	}
	s := &c.shards[c.shard(key)]
	s.mu.RLock()
	d := s.m[key]
	s.mu.RUnlock()
	return d
}

func (c *decisionCache) put(key string, d *core.Decision) {
	if c == nil {
		return
	}
	s := &c.shards[c.shard(key)]
	s.mu.Lock()
	if len(s.m) >= c.perShard {
		s.m = make(map[string]*core.Decision, c.perShard)
	}
	s.m[key] = d
	s.mu.Unlock()
}
