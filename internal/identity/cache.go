package identity

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/serverless-cdp/cdp/internal/lru"
)

// Cache bounds (Options.CacheIndexEntries, Options.CacheProfileBytes): what a warm identity
// Lambda keeps between invocations. An index entry takes about 200 bytes (identifier, profile
// id, list and map overhead), so 50,000 take about 10 MiB; profiles are kept as their JSON
// documents, at most 32 MiB of them (a profile's document is at most about 130 KiB: traits and
// group traits within MaxTraitBytes each, plus identifiers). Both fit the function's 512 MB.
const (
	DefaultCacheIndexEntries = 50_000
	DefaultCacheProfileBytes = 32 << 20
	// cacheCommitted is how many recently committed messages are remembered (about 150 bytes
	// each: 7 MiB), so that a redelivery to the same Lambda reads its marker instead of
	// failing a commit.
	cacheCommitted = 50_000
	// cacheProfileTTL bounds how stale a cached profile may be when it is used without being
	// written (e.g. a profile whose identifier is dropped for a limit); a profile that is
	// written is conditioned on its version anyway, so staleness there costs one retry.
	cacheProfileTTL = 5 * time.Minute
)

// graphCache keeps, in process, the identity index entries and profiles this processor read or
// wrote, so a warm Lambda does not read them again for the next events of the same people.
//
//   - Index entries are write-once (an identifier's entry names the profile it was attached to
//     and is never rewritten; merges are followed through the profiles' MergedInto pointers),
//     so a cached entry is never wrong. Absence is never cached.
//   - Profiles are cached with the version they were read or written at. A stale one (another
//     invocation has written the profile since) is caught by the commit's version condition:
//     the commit fails with ErrConflict, the profile is evicted, and the records are re-planned
//     from strongly consistent reads, which refresh the cache.
//
// Both are LRU caches with the bounds above. It is safe for concurrent use.
type graphCache struct {
	mu       sync.Mutex
	now      func() time.Time
	index    *lru.Cache[Identifier, string]
	profiles *lru.Cache[string, cachedProfile]
	// msgs are messages this processor committed: a redelivery of one of them (a client
	// resend, a Lambda retry of a batch partly committed) reads its dedupe marker on the first
	// attempt instead of failing its commit.
	msgs *lru.Cache[MessageRef, struct{}]
}

type cachedProfile struct {
	doc     []byte // JSON document (Profile without Version)
	version int64
	at      time.Time
}

func newGraphCache(indexEntries, profileBytes int, now func() time.Time) *graphCache {
	return &graphCache{now: now,
		index:    lru.New[Identifier, string](indexEntries, func(Identifier, string) int { return 1 }),
		profiles: lru.New[string, cachedProfile](profileBytes, func(id string, p cachedProfile) int { return len(id) + len(p.doc) + 64 }),
		msgs:     lru.New[MessageRef, struct{}](cacheCommitted, func(MessageRef, struct{}) int { return 1 }),
	}
}

// putProfile caches a profile as stored at version.
func (c *graphCache) putProfile(p *Profile, version int64) {
	doc, err := json.Marshal(p)
	if err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.profiles.Put(p.ID, cachedProfile{doc: doc, version: version, at: c.now()})
}

func (c *graphCache) evictProfile(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.profiles.Remove(id)
}

// profile returns a copy of a cached profile that is fresh enough; nil if none.
func (c *graphCache) profile(id string) *Profile {
	c.mu.Lock()
	cp, ok := c.profiles.Get(id)
	c.mu.Unlock()
	if !ok || c.now().Sub(cp.at) > cacheProfileTTL {
		return nil
	}
	var p Profile
	if json.Unmarshal(cp.doc, &p) != nil {
		return nil
	}
	p.ID, p.Version = id, cp.version
	return &p
}

func (c *graphCache) putIndex(id Identifier, profile string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.index.Put(id, profile)
}

func (c *graphCache) indexEntry(id Identifier) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.index.Get(id)
}

// committed updates the cache after a commit: its profiles at their new versions, its index
// entries. err is the commit's outcome: on a conflict its profiles are evicted instead.
func (c *graphCache) committed(cm *Commit, err error) {
	if err != nil {
		for _, p := range cm.Profiles {
			c.evictProfile(p.ID)
		}
		return
	}
	for _, p := range cm.Profiles {
		c.putProfile(p, p.Version+1)
	}
	for id, pid := range cm.IDs {
		c.putIndex(id, pid)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range cm.Events {
		c.msgs.Put(MessageRef{Source: e.SourceID, ID: e.Message.MessageID}, struct{}{})
	}
}

// seen returns the refs among these that this processor committed (recently).
func (c *graphCache) seen(refs []MessageRef) []MessageRef {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []MessageRef
	for _, r := range refs {
		if _, ok := c.msgs.Get(r); ok {
			out = append(out, r)
		}
	}
	return out
}

// cachedGraph is the GraphStore the planner reads through: eventually consistent reads are
// served from the cache where it can, and every read refreshes it. Consistent reads always go
// to the store. Commits go to the store unchanged (the processor tells the cache the outcome).
type cachedGraph struct {
	GraphStore
	c *graphCache
}

func (g cachedGraph) Index(ctx context.Context, ids []Identifier, consistent bool) (map[Identifier]string, error) {
	out := map[Identifier]string{}
	var miss []Identifier
	for _, id := range ids {
		if pid, ok := g.c.indexEntry(id); ok && !consistent {
			out[id] = pid
		} else {
			miss = append(miss, id)
		}
	}
	if len(miss) == 0 {
		return out, nil
	}
	got, err := g.GraphStore.Index(ctx, miss, consistent)
	if err != nil {
		return nil, err
	}
	for id, pid := range got {
		out[id] = pid
		g.c.putIndex(id, pid)
	}
	return out, nil
}

func (g cachedGraph) Profiles(ctx context.Context, ids []string, consistent bool) (map[string]*Profile, error) {
	out := map[string]*Profile{}
	var miss []string
	for _, id := range ids {
		if p := g.c.profile(id); p != nil && !consistent {
			out[id] = p
		} else {
			miss = append(miss, id)
		}
	}
	if len(miss) == 0 {
		return out, nil
	}
	got, err := g.GraphStore.Profiles(ctx, miss, consistent)
	if err != nil {
		return nil, err
	}
	for id, p := range got {
		out[id] = p
		g.c.putProfile(p, p.Version)
	}
	return out, nil
}
