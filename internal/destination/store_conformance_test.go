package destination

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// runStoreConformance checks the semantics the Service relies on, for any Store: a create is
// conditional (one winner), a replace is conditional on the version (a stale writer loses and
// changes nothing), not-found on get and delete, secrets kept with their values, and no lost
// update when writers race on one destination.
func runStoreConformance(t *testing.T, newStore func(t *testing.T) Store) {
	ctx := context.Background()
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	sample := func(id string) Destination {
		return Destination{ID: id, Name: "n-" + id, URL: "https://hooks.example.com/" + id, Enabled: true, Signing: "standard",
			BatchSize: 1, Headers: map[string]string{"X-A": "1"}, Subscriptions: Subscriptions{Audiences: []string{"*"}},
			Secrets: []Secret{{Value: "whsec_c2VjcmV0c2VjcmV0c2VjcmV0", CreatedAt: now}}, CreatedAt: now, UpdatedAt: now, Version: 1}
	}
	t.Run("not found", func(t *testing.T) {
		st := newStore(t)
		if _, err := st.Get(ctx, "dst_none"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("get: %v", err)
		}
		if err := st.Delete(ctx, "dst_none"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("delete: %v", err)
		}
		if l, err := st.List(ctx); err != nil || len(l) != 0 {
			t.Fatalf("list: %v %v", l, err)
		}
	})
	t.Run("create is conditional and round-trips", func(t *testing.T) {
		st := newStore(t)
		d := sample("dst_1")
		if err := st.Put(ctx, d, 0); err != nil {
			t.Fatal(err)
		}
		if err := st.Put(ctx, d, 0); !errors.Is(err, ErrConflict) {
			t.Fatalf("second create: %v", err)
		}
		got, err := st.Get(ctx, "dst_1")
		if err != nil || got.Name != d.Name || got.Headers["X-A"] != "1" || got.Version != 1 ||
			len(got.Secrets) != 1 || got.Secrets[0].Value != d.Secrets[0].Value || got.Secrets[0].Hint == "" {
			t.Fatalf("get: %+v %v", got, err)
		}
		got.Headers["X-A"] = "changed" // the caller's copy is its own
		if again, _ := st.Get(ctx, "dst_1"); again.Headers["X-A"] != "1" {
			t.Fatal("store shares maps with callers")
		}
	})
	t.Run("replace is conditional on the version", func(t *testing.T) {
		st := newStore(t)
		d := sample("dst_1")
		_ = st.Put(ctx, d, 0)
		d.Name, d.Version = "v2", 2
		if err := st.Put(ctx, d, 1); err != nil {
			t.Fatal(err)
		}
		stale := d
		stale.Name, stale.Version = "stale", 2
		if err := st.Put(ctx, stale, 1); !errors.Is(err, ErrConflict) {
			t.Fatalf("stale replace: %v", err)
		}
		if err := st.Put(ctx, sample("dst_2"), 5); !errors.Is(err, ErrConflict) {
			t.Fatalf("replace of a missing destination: %v", err)
		}
		if got, _ := st.Get(ctx, "dst_1"); got.Name != "v2" || got.Version != 2 {
			t.Fatalf("after stale write: %+v", got)
		}
	})
	t.Run("list and delete", func(t *testing.T) {
		st := newStore(t)
		for _, id := range []string{"dst_a", "dst_b", "dst_c"} {
			_ = st.Put(ctx, sample(id), 0)
		}
		if err := st.Delete(ctx, "dst_b"); err != nil {
			t.Fatal(err)
		}
		l, err := st.List(ctx)
		if err != nil || len(l) != 2 {
			t.Fatalf("list: %+v %v", l, err)
		}
		if _, err := st.Get(ctx, "dst_b"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("deleted: %v", err)
		}
	})
	t.Run("concurrent updates lose nothing", func(t *testing.T) {
		svc := NewServiceWith(newStore(t), WithClock(func() time.Time { return now }))
		d, _, err := svc.Create(ctx, Spec{Name: "c", URL: "https://hooks.example.com/c"})
		if err != nil {
			t.Fatal(err)
		}
		const writers = 4
		var wg sync.WaitGroup
		for i := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := svc.SetEnabled(ctx, d.ID, i%2 == 0, "w"); err != nil {
					t.Errorf("writer %d: %v", i, err)
				}
			}()
		}
		wg.Wait()
		if got, _ := svc.Get(ctx, d.ID); got.Version != 1+writers {
			t.Fatalf("version %d after %d updates: an update was lost", got.Version, writers)
		}
	})
}

func TestMemStoreConformance(t *testing.T) {
	runStoreConformance(t, func(*testing.T) Store { return NewMemStore() })
}
