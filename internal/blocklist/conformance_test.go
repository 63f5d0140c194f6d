package blocklist

import (
	"context"
	"sync"
	"testing"
	"time"
)

// That both stores are the privacy runner's privacy.Blocklist is asserted where they are wired
// (internal/app/privacyfn): package privacy imports this one for its Hasher.

var testKey = []byte("0123456789abcdef0123456789abcdef")

// clock is an injected clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

// newClock starts at the wall clock's second: expiries are TTLs too, and DynamoDB Local deletes
// items whose TTL has passed in the background, so a clock in the past could lose items mid-test.
func newClock() *clock { return &clock{t: time.Now().UTC().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// backend opens an empty store of one implementation.
type backend struct {
	name string
	open func(t testing.TB, opt Options) Store
}

var memBackend = backend{name: "mem", open: func(_ testing.TB, opt Options) Store { return NewMemStore(NewHasher(testKey), opt) }}

func eachBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	for _, b := range append([]backend{memBackend}, integrationBackends()...) {
		t.Run(b.name, func(t *testing.T) { fn(t, b) })
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestConformanceSuppressUnsuppress(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clk := newClock()
		s := b.open(t, Options{Now: clk.Now})
		h := NewHasher(testKey)
		v0, err := s.Version(ctx)
		must(t, err)
		ann := []string{"email:ann@example.com", "user_id:u1"}
		must(t, s.Suppress(ctx, "req1", ann, []string{Mask(ann[0]), Mask(ann[1])}))
		clk.Add(time.Second)
		must(t, s.Suppress(ctx, "req1", ann, []string{Mask(ann[0]), Mask(ann[1])})) // idempotent: keeps createdAt
		must(t, s.Suppress(ctx, "req2", []string{"user_id:u1", "anonymous_id:a9"}, []string{"l1", "l2"}))
		must(t, s.Suppress(ctx, "req3", []string{"user_id:bob"}, []string{"l3"}))
		v1, err := s.Version(ctx)
		must(t, err)
		if v1 <= v0 {
			t.Fatalf("version did not grow: %d -> %d", v0, v1)
		}
		snap, err := s.Load(ctx)
		must(t, err)
		for _, id := range []string{"email:ann@example.com", "user_id:u1", "anonymous_id:a9", "user_id:bob"} {
			if !snap.Identifiers[h.Identifier(id)] {
				t.Errorf("%s not in the loaded list", id)
			}
		}
		if len(snap.Identifiers) != 4 {
			t.Fatalf("loaded %d hashes, want 4", len(snap.Identifiers))
		}
		gs, err := s.Suppressions(ctx)
		must(t, err)
		if len(gs) != 3 || gs[0].Group != "req1" || len(gs[0].Labels) != 2 || gs[0].Labels[0] != "email:a…@e….com" || !gs[0].CreatedAt.Equal(clk.Now().Add(-time.Second)) {
			t.Fatalf("suppressions: %+v", gs)
		}
		// u1 is held by req1 and req2: both groups go, with all their identifiers.
		n, err := s.Unsuppress(ctx, []string{"user_id:u1"})
		must(t, err)
		if n != 4 {
			t.Fatalf("unsuppress removed %d entries, want 4", n)
		}
		v2, _ := s.Version(ctx)
		if v2 <= v1 {
			t.Fatalf("unsuppress did not bump the version: %d -> %d", v1, v2)
		}
		snap, _ = s.Load(ctx)
		if len(snap.Identifiers) != 1 || !snap.Identifiers[h.Identifier("user_id:bob")] {
			t.Fatalf("after unsuppress: %v", snap.Identifiers)
		}
		gs, _ = s.Suppressions(ctx)
		if len(gs) != 1 || gs[0].Group != "req3" {
			t.Fatalf("suppressions after unsuppress: %+v", gs)
		}
		if n, _ := s.Unsuppress(ctx, []string{"user_id:u1"}); n != 0 {
			t.Fatalf("second unsuppress removed %d", n)
		}
	})
}

func TestConformanceErasedProfilesExpire(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clk := newClock()
		s := b.open(t, Options{Now: clk.Now})
		h := NewHasher(testKey)
		must(t, s.BlockProfiles(ctx, "req1", []string{"use_a", "use_b"}, time.Hour))
		must(t, s.BlockProfiles(ctx, "req1", []string{"use_a", "use_b"}, time.Hour))
		snap, err := s.Load(ctx)
		must(t, err)
		if _, ok := snap.Profiles[h.Profile("use_a")]; len(snap.Profiles) != 2 || !ok || len(snap.Identifiers) != 0 {
			t.Fatalf("loaded %+v", snap)
		}
		if gs, _ := s.Suppressions(ctx); len(gs) != 0 {
			t.Fatalf("erased profiles are not suppressions: %+v", gs)
		}
		// Unsuppress leaves erased profiles alone.
		must(t, s.Suppress(ctx, "req1", []string{"user_id:u1"}, []string{"l"}))
		if _, err := s.Unsuppress(ctx, []string{"user_id:u1"}); err != nil {
			t.Fatal(err)
		}
		clk.Add(59 * time.Minute)
		if snap, _ = s.Load(ctx); len(snap.Profiles) != 2 {
			t.Fatalf("expired early: %+v", snap)
		}
		clk.Add(2 * time.Minute)
		if snap, _ = s.Load(ctx); len(snap.Profiles) != 0 {
			t.Fatalf("not expired after the ttl: %+v", snap)
		}
	})
}

func TestConformanceDroppedCounts(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := b.open(t, Options{})
		must(t, s.CountDropped(ctx, "src1", 3))
		must(t, s.CountDropped(ctx, "src1", 2))
		must(t, s.CountDropped(ctx, "src2", 1))
		must(t, s.CountDropped(ctx, "src3", 0))
		got, err := s.DroppedBySource(ctx)
		must(t, err)
		if len(got) != 2 || got["src1"] != 5 || got["src2"] != 1 {
			t.Fatalf("dropped: %v", got)
		}
	})
}

func TestConformanceBadInput(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := b.open(t, Options{})
		if err := s.Suppress(ctx, "", []string{"user_id:u"}, []string{"l"}); err == nil {
			t.Error("empty group accepted")
		}
		if err := s.Suppress(ctx, "g", []string{"user_id:u"}, nil); err == nil {
			t.Error("missing labels accepted")
		}
		if err := s.BlockProfiles(ctx, "g#x", []string{"use_a"}, time.Hour); err == nil {
			t.Error("group with '#' accepted")
		}
		if err := s.BlockProfiles(ctx, "g", []string{"use_a"}, 0); err == nil {
			t.Error("zero ttl accepted")
		}
		if v, _ := s.Version(ctx); v != 0 {
			t.Errorf("refused input changed the version to %d", v)
		}
	})
}

func TestPropagationDelay(t *testing.T) {
	for _, b := range []backend{memBackend} {
		if d := b.open(t, Options{}).PropagationDelay(); d != 3*time.Second {
			t.Errorf("default delay %v", d)
		}
		if d := b.open(t, Options{CheckInterval: 5 * time.Second}).PropagationDelay(); d != 11*time.Second {
			t.Errorf("delay for 5 s %v", d)
		}
	}
}
