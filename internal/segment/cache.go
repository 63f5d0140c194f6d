package segment

import (
	"sync"

	"github.com/serverless-cdp/cdp/internal/lru"
)

// DefaultStateCacheBytes bounds Handler's state cache by default (Options.StateCacheBytes).
const DefaultStateCacheBytes = 32 << 20

// cacheEntryOverhead is what an entry costs besides its encoded state and profile id (list
// element, map entry, entry struct), counted against the cache's bound.
const cacheEntryOverhead = 160

// stateCache keeps, per profile, the encoded state this process last stored or loaded with its
// version: a Lambda container mostly sees the same shard's profiles again, so the next change
// of a profile usually needs no read. An entry may be stale (another process wrote since): the
// version condition of the next commit catches it (ErrConflict), and the handler then drops
// the entry and reads consistently. Entries whose outbox may be unpublished are not served
// (the store holds the records to publish). It is a least-recently-used list bounded by bytes:
// the encoded states plus cacheEntryOverhead and the profile id per entry never exceed max.
// Safe for concurrent use.
type stateCache struct {
	mu  sync.Mutex
	lru *lru.Cache[string, *cacheEntry] // by profile id
}

type cacheEntry struct {
	ver     int64
	data    []byte // encoded state (immutable)
	pending bool   // stored with an outbox not yet published by this process
}

// newStateCache returns a cache of at most max bytes; max <= 0 disables it.
func newStateCache(max int) *stateCache {
	cost := func(pid string, e *cacheEntry) int { return len(e.data) + len(pid) + cacheEntryOverhead }
	return &stateCache{lru: lru.New(max, cost)}
}

// get returns a profile's entry if it is cached and its outbox published; pending says it is
// cached with an outbox this process failed to publish (the store has it: read it consistently).
func (c *stateCache) get(pid string) (e cacheEntry, ok, pending bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ce, found := c.lru.Peek(pid)
	switch {
	case !found:
		return cacheEntry{}, false, false
	case ce.pending:
		return cacheEntry{}, false, true
	}
	c.lru.Get(pid) // the most recently used
	return *ce, true, false
}

// put records a profile's stored state at version ver.
func (c *stateCache) put(pid string, ver int64, data []byte, pending bool) {
	if data == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lru.Put(pid, &cacheEntry{ver: ver, data: data, pending: pending})
}

// publishedAt reports whether this process published the outbox stored with version ver.
func (c *stateCache) publishedAt(pid string, ver int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.lru.Peek(pid)
	return ok && e.ver == ver && !e.pending
}

// published notes that the outbox stored with version ver was published.
func (c *stateCache) published(pid string, ver int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.lru.Peek(pid); ok && e.ver == ver {
		e.pending = false
	}
}

// drop forgets a profile (its entry proved stale).
func (c *stateCache) drop(pid string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lru.Remove(pid)
}

// bytes is the cache's current size by the bound's measure.
func (c *stateCache) bytes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Used()
}
