package segment

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// countingStore counts registry listings (a scan of every profile) and schedule reads.
type countingStore struct {
	*MemStore
	profiles, due atomic.Int64
}

func (c *countingStore) Profiles(ctx context.Context, shard, limit int, cursor string) ([]string, string, error) {
	c.profiles.Add(1)
	return c.MemStore.Profiles(ctx, shard, limit, cursor)
}

func (c *countingStore) Due(ctx context.Context, shard int, now time.Time, limit int) ([]string, error) {
	c.due.Add(1)
	return c.MemStore.Due(ctx, shard, now, limit)
}

// TestTickReadsScheduleNotRegistry: with 40 profiles of which one has a windowed membership,
// Tick finds the one due profile through the schedule index (one read per shard) and never
// lists the profile registry; the profile exits once its window has passed.
func TestTickReadsScheduleNotRegistry(t *testing.T) {
	st := &countingStore{MemStore: NewMemStore()}
	clk := &clock{t: t0}
	pub := &MemPublisher{}
	h := NewHandler(st, pub, Options{Clock: clk.Now, DefCacheTTL: time.Nanosecond})
	sv := NewService(st, clk.Now)
	ctx := context.Background()
	a, err := sv.SaveAudience(ctx, *aud(t, "", "Recent buyers", `{"event":{"name":"Order Completed","within":{"hours":1}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.RunBackfills(ctx); err != nil {
		t.Fatal(err)
	}
	e := &env{h: h}
	for i := range 40 {
		name := "Page Viewed"
		if i == 7 {
			name = "Order Completed"
		}
		e.send(t, chg(fmt.Sprintf("p%02d", i), 1, `{}`, track(fmt.Sprintf("m%d", i), name, t0.Add(-time.Minute), `{}`)))
	}
	if n, _ := st.Size(ctx, a.ID); n != 1 {
		t.Fatalf("members before the window passed: %d", n)
	}
	st.profiles.Store(0)
	clk.Add(2 * time.Hour)
	res, err := h.Tick(ctx)
	if err != nil || res.Due != 1 || res.Failed != 0 {
		t.Fatalf("tick: %+v %v", res, err)
	}
	if st.profiles.Load() != 0 || st.due.Load() != schedShards {
		t.Fatalf("tick listed the registry %d times and read the schedule %d times (want 0 and %d)", st.profiles.Load(), st.due.Load(), schedShards)
	}
	if n, _ := st.Size(ctx, a.ID); n != 0 {
		t.Fatalf("members after the window passed: %d", n)
	}
	if res, _ := h.Tick(ctx); res.Due != 0 {
		t.Fatalf("second tick: %+v (the exited profile is still scheduled)", res)
	}
}
