package blocklist

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// countingStore counts the reads a checker makes and can fail them.
type countingStore struct {
	Store
	versions, loads atomic.Int64
	fail            atomic.Bool
}

var errDown = errors.New("store down")

func (c *countingStore) Version(ctx context.Context) (int64, error) {
	c.versions.Add(1)
	if c.fail.Load() {
		return 0, errDown
	}
	return c.Store.Version(ctx)
}

func (c *countingStore) Load(ctx context.Context) (Snapshot, error) {
	c.loads.Add(1)
	return c.Store.Load(ctx)
}

func TestCheckerReadsVersionOncePerIntervalAndReloadsOnChange(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	h := NewHasher(testKey)
	cs := &countingStore{Store: NewMemStore(h, Options{Now: clk.Now})}
	c := NewChecker(cs, h, CheckerOptions{Now: clk.Now})
	for range 100 {
		if sup, err := c.Suppressed(ctx, []string{"user_id:u1"}); err != nil || sup {
			t.Fatalf("empty list: %v %v", sup, err)
		}
	}
	if cs.versions.Load() != 1 || cs.loads.Load() != 1 {
		t.Fatalf("100 checks in one interval: %d version reads, %d loads; want 1 and 1", cs.versions.Load(), cs.loads.Load())
	}
	must(t, cs.Suppress(ctx, "req1", []string{"user_id:u1"}, []string{"l"}))
	// Within the interval the old copy answers.
	clk.Add(999 * time.Millisecond)
	if sup, _ := c.Suppressed(ctx, []string{"user_id:u1"}); sup {
		t.Fatal("refreshed before the interval passed")
	}
	clk.Add(time.Millisecond)
	if sup, err := c.Suppressed(ctx, []string{"anonymous_id:x", "user_id:u1"}); err != nil || !sup {
		t.Fatalf("after the interval: %v %v", sup, err)
	}
	if cs.versions.Load() != 2 || cs.loads.Load() != 2 {
		t.Fatalf("after a change: %d version reads, %d loads", cs.versions.Load(), cs.loads.Load())
	}
	// No change: the version is read again, the list is not.
	clk.Add(time.Second)
	_, _ = c.Suppressed(ctx, []string{"user_id:u1"})
	if cs.versions.Load() != 3 || cs.loads.Load() != 2 {
		t.Fatalf("unchanged version: %d version reads, %d loads", cs.versions.Load(), cs.loads.Load())
	}
	if d := cs.PropagationDelay(); d < 2*time.Second {
		t.Fatalf("propagation delay %v shorter than two intervals", d)
	}
}

func TestCheckerErased(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	h := NewHasher(testKey)
	s := NewMemStore(h, Options{Now: clk.Now})
	c := NewChecker(s, h, CheckerOptions{Now: clk.Now})
	must(t, s.BlockProfiles(ctx, "req1", []string{"use_a"}, 8*24*time.Hour))
	if e, err := c.Erased(ctx, "use_a"); err != nil || !e {
		t.Fatalf("erased profile: %v %v", e, err)
	}
	if e, _ := c.Erased(ctx, "use_b"); e {
		t.Fatal("other profile erased")
	}
	if sup, _ := c.Suppressed(ctx, []string{"user_id:use_a"}); sup {
		t.Fatal("an erased profile is not a suppressed identifier")
	}
	// The entry expires even while the copy is current (no change, no reload).
	clk.Add(8*24*time.Hour - time.Second)
	if e, _ := c.Erased(ctx, "use_a"); !e {
		t.Fatal("expired early")
	}
	clk.Add(time.Second)
	if e, _ := c.Erased(ctx, "use_a"); e {
		t.Fatal("still erased after the ttl")
	}
	must(t, c.CountDropped(ctx, "src", 2))
	if got, _ := s.DroppedBySource(ctx); got["src"] != 2 {
		t.Fatalf("dropped via checker: %v", got)
	}
}

func TestCheckerReturnsRefreshErrors(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	h := NewHasher(testKey)
	cs := &countingStore{Store: NewMemStore(h, Options{Now: clk.Now})}
	must(t, cs.Suppress(ctx, "req1", []string{"user_id:u1"}, []string{"l"}))
	c := NewChecker(cs, h, CheckerOptions{Now: clk.Now})
	cs.fail.Store(true)
	if sup, err := c.Suppressed(ctx, []string{"user_id:u2"}); !errors.Is(err, errDown) || sup {
		t.Fatalf("first load failed: %v %v", sup, err)
	}
	cs.fail.Store(false)
	if sup, err := c.Suppressed(ctx, []string{"user_id:u1"}); err != nil || !sup {
		t.Fatalf("recovered: %v %v", sup, err)
	}
	clk.Add(time.Second)
	cs.fail.Store(true)
	if _, err := c.Erased(ctx, "use_a"); !errors.Is(err, errDown) {
		t.Fatalf("a failed refresh must be reported, got %v", err)
	}
}

// BenchmarkCheckerSuppressed is the per-record cost of a check in steady state (a list of
// 10,000 identifiers, no change): hashing the record's identifiers and set look-ups, no request.
func BenchmarkCheckerSuppressed(b *testing.B) {
	ctx := context.Background()
	h := NewHasher(testKey)
	cs := &countingStore{Store: NewMemStore(h, Options{})}
	ids := make([]string, 10000)
	for i := range ids {
		ids[i] = "email:person" + strconv.Itoa(i) + "@example.com"
	}
	if err := cs.Suppress(ctx, "req", ids, ids); err != nil {
		b.Fatal(err)
	}
	c := NewChecker(cs, h, CheckerOptions{Interval: time.Hour})
	rec := []string{"user_id:user-00042", "anonymous_id:anon-00042-1", "email:someone@example.com"}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if sup, err := c.Suppressed(ctx, rec); err != nil || sup {
			b.Fatal(sup, err)
		}
	}
	b.ReportMetric(float64(cs.versions.Load()+cs.loads.Load())/float64(b.N), "requests/op")
}
