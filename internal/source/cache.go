package source

import (
	"container/list"
	"context"
	"errors"
	"sync"
	"time"
)

// Cache defaults.
const (
	DefaultCacheTTL         = 30 * time.Second
	DefaultNegativeCacheTTL = 5 * time.Second
	DefaultCacheEntries     = 10000
)

// Cache remembers write-key resolutions in memory so a warm ingest function does not read
// DynamoDB on every request. Found keys are kept for the TTL, unknown keys for the (shorter)
// negative TTL, so a freshly created key works within seconds; other errors are never cached.
// The cost: disabling a source or revoking a key reaches a warm instance only after the TTL.
// The cache is bounded (least recently used entries are evicted) and safe for concurrent use.
type Cache struct {
	next   Resolver
	ttl    time.Duration
	negTTL time.Duration
	max    int
	now    func() time.Time

	mu      sync.Mutex
	entries map[string]*list.Element // key hash → element holding *cacheEntry
	lru     *list.List               // front: most recently used
}

type cacheEntry struct {
	hash    string
	src     Source
	found   bool
	expires time.Time
}

// CacheOption tunes a Cache.
type CacheOption func(*Cache)

// WithNegativeTTL sets how long an unknown key is remembered (default 5 s, at most the TTL).
func WithNegativeTTL(d time.Duration) CacheOption { return func(c *Cache) { c.negTTL = d } }

// WithMaxEntries bounds the number of cached keys (default 10,000).
func WithMaxEntries(n int) CacheOption { return func(c *Cache) { c.max = n } }

// NewCache wraps a resolver. ttl is the positive TTL; now is the clock (nil: time.Now).
func NewCache(next Resolver, ttl time.Duration, now func() time.Time, opts ...CacheOption) *Cache {
	if now == nil {
		now = time.Now
	}
	c := &Cache{next: next, ttl: ttl, negTTL: min(DefaultNegativeCacheTTL, ttl), max: DefaultCacheEntries, now: now,
		entries: map[string]*list.Element{}, lru: list.New()}
	for _, o := range opts {
		o(c)
	}
	if c.max < 1 {
		c.max = 1
	}
	return c
}

// ResolveWriteKey answers from the cache when it can, else asks the wrapped resolver.
func (c *Cache) ResolveWriteKey(ctx context.Context, key string) (Source, error) {
	if key == "" || len(key) > maxKeyLength {
		return Source{}, ErrNotFound
	}
	hash := hashKey(key) // plaintext keys are not kept in memory either
	if src, found, ok := c.get(hash); ok {
		if !found {
			return Source{}, ErrNotFound
		}
		return src, nil
	}
	src, err := c.next.ResolveWriteKey(ctx, key)
	switch {
	case err == nil:
		c.put(hash, src, true, c.ttl)
	case errors.Is(err, ErrNotFound):
		c.put(hash, Source{}, false, c.negTTL)
	}
	return src, err
}

// Len returns the number of cached entries (expired ones included until evicted).
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

func (c *Cache) get(hash string) (Source, bool, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[hash]
	if !ok {
		return Source{}, false, false
	}
	e := el.Value.(*cacheEntry)
	if !c.now().Before(e.expires) {
		c.lru.Remove(el)
		delete(c.entries, hash)
		return Source{}, false, false
	}
	c.lru.MoveToFront(el)
	return e.src, e.found, true
}

func (c *Cache) put(hash string, src Source, found bool, ttl time.Duration) {
	if ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := &cacheEntry{hash: hash, src: src, found: found, expires: c.now().Add(ttl)}
	if el, ok := c.entries[hash]; ok {
		el.Value = e
		c.lru.MoveToFront(el)
		return
	}
	for c.lru.Len() >= c.max {
		oldest := c.lru.Back()
		c.lru.Remove(oldest)
		delete(c.entries, oldest.Value.(*cacheEntry).hash)
	}
	c.entries[hash] = c.lru.PushFront(e)
}
