package identity

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/tracking"
)

// countingGraph counts the keys read through a GraphStore.
type countingGraph struct {
	GraphStore
	mu                       sync.Mutex
	markers, index, profiles int
}

func (c *countingGraph) Markers(ctx context.Context, refs []MessageRef, consistent, legacy bool) (map[MessageRef]Marker, error) {
	c.mu.Lock()
	c.markers += len(refs)
	c.mu.Unlock()
	return c.GraphStore.Markers(ctx, refs, consistent, legacy)
}

func (c *countingGraph) Index(ctx context.Context, ids []Identifier, consistent bool) (map[Identifier]string, error) {
	c.mu.Lock()
	c.index += len(ids)
	c.mu.Unlock()
	return c.GraphStore.Index(ctx, ids, consistent)
}

func (c *countingGraph) Profiles(ctx context.Context, ids []string, consistent bool) (map[string]*Profile, error) {
	c.mu.Lock()
	c.profiles += len(ids)
	c.mu.Unlock()
	return c.GraphStore.Profiles(ctx, ids, consistent)
}

func (c *countingGraph) reads() (int, int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.markers, c.index, c.profiles
}

// A warm processor reads nothing for the next event of a known profile: no dedupe marker (the
// commit's condition catches a redelivery), no index entry and no profile (cached). A
// redelivery is still a duplicate (its marker read if this processor committed it), and a
// profile changed by another writer meanwhile is re-read and nothing is lost.
func TestWarmProcessorReadsNothingForKnownProfiles(t *testing.T) {
	m := NewMemStore(nil)
	cg := &countingGraph{GraphStore: m}
	cc := &conflictCounter{GraphStore: cg}
	rules, _ := Compile(Rules{})
	proc := NewProcessor(cc, StaticRules{rules}, Options{SkipLegacyDedupe: true})
	e := &env{store: m, data: memData{m}, proc: proc}
	e.process(t, rec("identify", "w1", 0, f{"uid": "u", "aid": "a", "traits": `{"plan":"pro"}`}))
	mk0, ix0, pr0 := cg.reads()
	e.process(t, rec("track", "w2", 1, f{"uid": "u", "aid": "a", "event": "E"}), rec("page", "w3", 2, f{"aid": "a"}))
	if mk, ix, pr := cg.reads(); mk != mk0 || ix != ix0 || pr != pr0 {
		t.Fatalf("warm batch read %d markers, %d index entries, %d profiles", mk-mk0, ix-ix0, pr-pr0)
	}
	// Another writer (no cache of this processor's) adds an event: the cached profile is stale.
	other := NewProcessor(m, StaticRules{rules}, Options{SkipLegacyDedupe: true, CacheIndexEntries: -1, CacheProfileBytes: -1})
	if res, _, err := other.Process(context.Background(), []tracking.Record{rec("track", "o1", 3, f{"uid": "u", "event": "O"})}); err != nil || res[0].Outcome != Processed {
		t.Fatalf("other writer: %+v %v", res, err)
	}
	res := e.process(t, rec("track", "w4", 4, f{"uid": "u", "event": "E"}), rec("track", "w2", 1, f{"uid": "u", "aid": "a", "event": "E"}))
	if res[0].Outcome != Processed || res[1].Outcome != Duplicate {
		t.Fatalf("results %+v", res)
	}
	p := e.byID(t, "user_id:u")
	if p.EventCount != 5 || p.Seq != 5 {
		t.Fatalf("profile counts %d events, counter %d; want 5 and 5", p.EventCount, p.Seq)
	}
	// A redelivery of a message this processor committed reads its marker instead of failing
	// a commit.
	mk0, _, _ = cg.reads()
	conflicts := cc.n.Load()
	if res := e.process(t, rec("page", "w3", 2, f{"aid": "a"})); res[0].Outcome != Duplicate {
		t.Fatalf("redelivery: %+v", res)
	}
	if mk, _, _ := cg.reads(); mk != mk0+1 || cc.n.Load() != conflicts {
		t.Fatalf("redelivery read %d markers and met %d conflicts", mk-mk0, cc.n.Load()-conflicts)
	}
	rules2, _ := Compile(Rules{})
	checkInvariants(t, snapshot(t, e), rules2)
}

// A cached profile older than its time to live is read again.
func TestCachedProfileExpires(t *testing.T) {
	now := t0
	c := newGraphCache(10, 1<<20, func() time.Time { return now })
	c.putProfile(&Profile{ID: "use_p", EventCount: 3}, 7)
	if p := c.profile("use_p"); p == nil || p.Version != 7 || p.EventCount != 3 {
		t.Fatalf("cached: %+v", p)
	}
	now = now.Add(cacheProfileTTL + time.Second)
	if p := c.profile("use_p"); p != nil {
		t.Fatalf("expired profile served: %+v", p)
	}
}
