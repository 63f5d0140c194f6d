package replay

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func sampleJob(t *testing.T, at time.Time) Job {
	t.Helper()
	j, err := NewJob(Input{From: at.Add(-2 * time.Hour), To: at.Add(-time.Hour), Identifiers: []string{"email:Ann@Example.com"},
		Events: []string{"Order Completed"}, Target: Target{Type: TargetDestination, DestinationID: "dst_1"}, RequestedBy: "tok_1"}, at)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// runStoreConformance checks every JobStore the same way: create is conditional, get and
// update round-trip the whole job (update is conditional on the version: no lost update under
// concurrent writers), list is newest first with paging, and Pending holds only unfinished
// jobs, oldest first.
func runStoreConformance(t *testing.T, newStore func(t *testing.T) JobStore) {
	ctx := context.Background()
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	t.Run("create get update", func(t *testing.T) {
		s := newStore(t)
		j := sampleJob(t, t0)
		if _, err := s.Get(ctx, j.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("get before create: %v", err)
		}
		if err := s.Update(ctx, j.ID, func(*Job) error { return nil }); !errors.Is(err, ErrNotFound) {
			t.Fatalf("update before create: %v", err)
		}
		if err := s.Create(ctx, j); err != nil {
			t.Fatal(err)
		}
		if err := s.Create(ctx, j); !errors.Is(err, ErrConflict) {
			t.Fatalf("second create: %v", err)
		}
		got, err := s.Get(ctx, j.ID)
		if err != nil || got.Version != 1 || got.Identifiers[0] != "email:ann@example.com" || !got.From.Equal(j.From) ||
			got.Target.DestinationID != "dst_1" || got.Status != StatusPending || got.Events[0] != "Order Completed" {
			t.Fatalf("get: %+v %v", got, err)
		}
		boom := errors.New("boom")
		if err := s.Update(ctx, j.ID, func(*Job) error { return boom }); !errors.Is(err, boom) {
			t.Fatalf("update error: %v", err)
		}
		err = s.Update(ctx, j.ID, func(c *Job) error {
			c.Progress = Progress{ObjectsDone: 3, Cursor: "source=s/dt=2026-01-01/hour=00/a.json.gz", Partial: "p", Line: 7}
			c.Counts.Read, c.Counts.Skipped = 10, map[string]int64{SkipSuppressed: 2}
			c.LeaseOwner, c.LeaseUntil = "me", t0.Add(time.Minute)
			return nil
		})
		got, _ = s.Get(ctx, j.ID)
		if err != nil || got.Version != 2 || got.Progress.Line != 7 || got.Progress.Cursor == "" || got.Counts.Read != 10 ||
			got.Counts.Skipped[SkipSuppressed] != 2 || got.LeaseOwner != "me" || !got.LeaseUntil.Equal(t0.Add(time.Minute)) {
			t.Fatalf("after update: %+v %v", got, err)
		}
	})
	t.Run("no lost update", func(t *testing.T) {
		s := newStore(t)
		j := sampleJob(t, t0)
		_ = s.Create(ctx, j)
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := s.Update(ctx, j.ID, func(c *Job) error { c.Counts.Sent++; return nil }); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if got, _ := s.Get(ctx, j.ID); got.Counts.Sent != 8 || got.Version != 9 {
			t.Fatalf("sent %d version %d: an update was lost", got.Counts.Sent, got.Version)
		}
	})
	t.Run("list newest first, pending", func(t *testing.T) {
		s := newStore(t)
		var ids []string
		for i := range 5 {
			j := sampleJob(t, t0.Add(time.Duration(i)*time.Second))
			if err := s.Create(ctx, j); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, j.ID)
		}
		page, next, err := s.List(ctx, 2, "")
		if err != nil || len(page) != 2 || page[0].ID != ids[4] || page[1].ID != ids[3] || next == "" {
			t.Fatalf("page 1: %v %q %v", page, next, err)
		}
		page, next, _ = s.List(ctx, 2, next)
		if len(page) != 2 || page[0].ID != ids[2] {
			t.Fatalf("page 2: %v", page)
		}
		page, next, _ = s.List(ctx, 2, next)
		if len(page) != 1 || page[0].ID != ids[0] || next != "" {
			t.Fatalf("page 3: %v %q", page, next)
		}
		_ = s.Update(ctx, ids[0], func(c *Job) error { c.Status = StatusCompleted; return nil })
		_ = s.Update(ctx, ids[1], func(c *Job) error { c.Status = StatusFailed; return nil })
		_ = s.Update(ctx, ids[2], func(c *Job) error { c.Status = StatusRunning; return nil })
		pendingIs(t, s, ids[2], ids[3], ids[4])
	})
}

// pendingIs waits for Pending to list exactly ids, in order (a DynamoDB index is eventually
// consistent).
func pendingIs(t *testing.T, s JobStore, ids ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := s.Pending(context.Background())
		var have []string
		for _, j := range got {
			have = append(have, j.ID)
		}
		if err == nil && fmt.Sprint(have) == fmt.Sprint(ids) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pending: %v, want %v (%v)", have, ids, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestMemStoreConformance(t *testing.T) {
	runStoreConformance(t, func(*testing.T) JobStore { return NewMemStore() })
}
