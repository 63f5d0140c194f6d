package source_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/source"
)

// fakeResolver answers from a map and counts calls.
type fakeResolver struct {
	mu    sync.Mutex
	keys  map[string]source.Source
	err   error
	calls atomic.Int64
}

func (f *fakeResolver) ResolveWriteKey(_ context.Context, key string) (source.Source, error) {
	f.calls.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return source.Source{}, f.err
	}
	s, ok := f.keys[key]
	if !ok {
		return source.Source{}, source.ErrNotFound
	}
	return s, nil
}

func (f *fakeResolver) set(key string, s *source.Source) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s == nil {
		delete(f.keys, key)
	} else {
		f.keys[key] = *s
	}
}

func TestCachePositiveTTL(t *testing.T) {
	clk := &clock{t: time.Unix(1_000_000, 0)}
	next := &fakeResolver{keys: map[string]source.Source{"k": {ID: "src_1", Enabled: true}}}
	c := source.NewCache(next, 30*time.Second, clk.Now)

	for range 3 {
		if s := mustResolve(t, c, "k"); s.ID != "src_1" {
			t.Fatalf("resolved %+v", s)
		}
	}
	if n := next.calls.Load(); n != 1 {
		t.Fatalf("%d lookups for 3 resolutions within the TTL, want 1", n)
	}
	// Disabling shows after the TTL, not before.
	next.set("k", &source.Source{ID: "src_1", Enabled: false})
	clk.Add(29 * time.Second)
	if !mustResolve(t, c, "k").Enabled {
		t.Fatal("cache expired early")
	}
	clk.Add(time.Second)
	if mustResolve(t, c, "k").Enabled {
		t.Fatal("cache served a stale entry after the TTL")
	}
	if n := next.calls.Load(); n != 2 {
		t.Fatalf("%d lookups, want 2", n)
	}
}

func TestCacheNegativeTTL(t *testing.T) {
	clk := &clock{t: time.Unix(1_000_000, 0)}
	next := &fakeResolver{keys: map[string]source.Source{}}
	c := source.NewCache(next, 30*time.Second, clk.Now)

	mustNotResolve(t, c, "new")
	mustNotResolve(t, c, "new")
	if n := next.calls.Load(); n != 1 {
		t.Fatalf("%d lookups, want 1 (unknown key cached)", n)
	}
	next.set("new", &source.Source{ID: "src_2", Enabled: true})
	clk.Add(4 * time.Second)
	mustNotResolve(t, c, "new")
	clk.Add(time.Second) // 5 s: the negative entry is over
	if mustResolve(t, c, "new").ID != "src_2" {
		t.Fatal("new key not seen after the negative TTL")
	}

	// Oversized and empty keys never reach the resolver.
	before := next.calls.Load()
	mustNotResolve(t, c, "")
	mustNotResolve(t, c, string(make([]byte, 1000)))
	if next.calls.Load() != before {
		t.Fatal("invalid keys were looked up")
	}
}

func TestCacheDoesNotCacheErrors(t *testing.T) {
	clk := &clock{t: time.Unix(1_000_000, 0)}
	boom := errors.New("throttled")
	next := &fakeResolver{keys: map[string]source.Source{"k": {ID: "src_1"}}, err: boom}
	c := source.NewCache(next, 30*time.Second, clk.Now)
	if _, err := c.ResolveWriteKey(context.Background(), "k"); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	next.mu.Lock()
	next.err = nil
	next.mu.Unlock()
	if mustResolve(t, c, "k").ID != "src_1" {
		t.Fatal("error was cached")
	}
}

func TestCacheBounded(t *testing.T) {
	clk := &clock{t: time.Unix(1_000_000, 0)}
	next := &fakeResolver{keys: map[string]source.Source{}}
	for i := range 10 {
		next.keys[fmt.Sprint("k", i)] = source.Source{ID: fmt.Sprint("src_", i)}
	}
	c := source.NewCache(next, time.Minute, clk.Now, source.WithMaxEntries(4))
	for i := range 10 {
		mustResolve(t, c, fmt.Sprint("k", i))
	}
	for i := range 100 {
		mustNotResolve(t, c, fmt.Sprint("unknown", i))
	}
	if n := c.Len(); n != 4 {
		t.Fatalf("cache holds %d entries, want 4", n)
	}
	// Least recently used goes first: k9 was evicted by unknowns, re-resolving it looks up again.
	before := next.calls.Load()
	mustResolve(t, c, "k9")
	if next.calls.Load() != before+1 {
		t.Fatal("evicted entry served from cache")
	}
	mustResolve(t, c, "k9")
	if next.calls.Load() != before+1 {
		t.Fatal("fresh entry not cached")
	}
}

func TestCacheConcurrent(t *testing.T) {
	next := &fakeResolver{keys: map[string]source.Source{}}
	for i := range 50 {
		next.keys[fmt.Sprint("k", i)] = source.Source{ID: fmt.Sprint("src_", i)}
	}
	c := source.NewCache(next, time.Minute, nil, source.WithMaxEntries(20))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				k := fmt.Sprint("k", (i*7+g)%60)
				s, err := c.ResolveWriteKey(context.Background(), k)
				want, ok := next.keys[k]
				switch {
				case ok && (err != nil || s.ID != want.ID):
					t.Errorf("%s: %+v, %v", k, s, err)
				case !ok && !errors.Is(err, source.ErrNotFound):
					t.Errorf("%s: %v, want ErrNotFound", k, err)
				}
			}
		}()
	}
	wg.Wait()
	if c.Len() > 20 {
		t.Fatalf("cache grew to %d entries", c.Len())
	}
}
