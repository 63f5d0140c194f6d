package privacy

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/blocklist"
)

// clock is a test clock the suite moves.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var testHasher = blocklist.NewHasher([]byte("0123456789abcdef-test"))

func sampleRequest(t *testing.T, at time.Time, ids ...string) Request {
	t.Helper()
	r, err := NewRequest(Input{Type: TypeExport, Identifiers: ids, RequestedBy: "tok_1"}, testHasher, at)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// runStoreConformance checks every RequestStore the same way: create is conditional, get and
// update round-trip (update is conditional on the version: no lost update under concurrent
// writers), list is newest first with paging, ListAbout matches by hash, Pending holds only
// unsettled requests (unfinished, or with a follow-up pending), and export results
// round-trip whole (also when chunked), expire after the TTL and are deleted.
func runStoreConformance(t *testing.T, newStore func(t *testing.T, ttl time.Duration, now func() time.Time) RequestStore) {
	ctx := context.Background()
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	t.Run("create get update", func(t *testing.T) {
		s := newStore(t, 0, nil)
		r := sampleRequest(t, t0, "email:ann@example.com")
		if _, err := s.Get(ctx, r.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("get before create: %v", err)
		}
		if err := s.Update(ctx, r.ID, func(*Request) error { return nil }); !errors.Is(err, ErrNotFound) {
			t.Fatalf("update before create: %v", err)
		}
		if err := s.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
		if err := s.Create(ctx, r); !errors.Is(err, ErrConflict) {
			t.Fatalf("second create: %v", err)
		}
		got, err := s.Get(ctx, r.ID)
		if err != nil || got.Version != 1 || got.Identifiers[0] != "email:ann@example.com" || got.Labels[0] != "email:a…@e….com" ||
			!got.CreatedAt.Equal(r.CreatedAt) || got.Status != StatusPending {
			t.Fatalf("get: %+v %v", got, err)
		}
		boom := errors.New("boom")
		if err := s.Update(ctx, r.ID, func(*Request) error { return boom }); !errors.Is(err, boom) {
			t.Fatalf("update error: %v", err)
		}
		err = s.Update(ctx, r.ID, func(c *Request) error {
			c.Results = map[string]map[string]int{"identity": {"events": 3}}
			c.Person = &Person{Profiles: []string{"p1"}}
			return nil
		})
		if got, _ = s.Get(ctx, r.ID); err != nil || got.Version != 2 || got.Results["identity"]["events"] != 3 || got.Person.Profiles[0] != "p1" {
			t.Fatalf("after update: %+v %v", got, err)
		}
	})
	t.Run("no lost update", func(t *testing.T) {
		s := newStore(t, 0, nil)
		r := sampleRequest(t, t0, "user_id:u1")
		_ = s.Create(ctx, r)
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := s.Update(ctx, r.ID, func(c *Request) error {
					c.Labels = append(c.Labels, fmt.Sprint(i))
					return nil
				})
				if err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if got, _ := s.Get(ctx, r.ID); len(got.Labels) != 9 || got.Version != 9 {
			t.Fatalf("labels %v version %d: an update was lost", got.Labels, got.Version)
		}
	})
	t.Run("list newest first, ListAbout, Pending", func(t *testing.T) {
		s := newStore(t, 0, nil)
		var ids []string
		for i := range 5 {
			r := sampleRequest(t, t0.Add(time.Duration(i)*time.Second), fmt.Sprintf("user_id:u%d", i%2))
			if err := s.Create(ctx, r); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, r.ID)
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
		about, err := s.ListAbout(ctx, []string{testHasher.Identifier("user_id:u1"), "nothing"})
		if err != nil || len(about) != 2 || about[0].ID != ids[1] || about[1].ID != ids[3] {
			t.Fatalf("about u1: %v %v", about, err)
		}
		_ = s.Update(ctx, ids[0], func(c *Request) error { c.Status = StatusCompleted; return nil })
		_ = s.Update(ctx, ids[1], func(c *Request) error { c.Status = StatusFailed; return nil })
		_ = s.Update(ctx, ids[2], func(c *Request) error { c.Status = StatusRunning; return nil })
		pendingIs(t, s, ids[2], ids[3], ids[4])
		// A completed request whose follow-up erase is pending stays pending until it is done.
		followUp := []FollowUp{{Holder: "archive", Due: t0, Status: FollowUpPending}}
		_ = s.Update(ctx, ids[3], func(c *Request) error { c.Status, c.FollowUps = StatusCompleted, followUp; return nil })
		pendingIs(t, s, ids[2], ids[3], ids[4])
		_ = s.Update(ctx, ids[3], func(c *Request) error { c.FollowUps[0].Status = FollowUpDone; return nil })
		pendingIs(t, s, ids[2], ids[4])
	})
	t.Run("export results", func(t *testing.T) {
		c := &clock{t: t0}
		s := newStore(t, time.Hour, c.now)
		if _, err := s.GetExport(ctx, "pr_none"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("get missing: %v", err)
		}
		big := make([]byte, 900<<10) // incompressible: three parts
		_, _ = rand.Read(big)
		small := []byte(`{"requestId":"pr_1"}`)
		for _, doc := range [][]byte{big, small} {
			if err := s.PutExport(ctx, "pr_1", doc); err != nil {
				t.Fatal(err)
			}
			if got, err := s.GetExport(ctx, "pr_1"); err != nil || !bytes.Equal(got, doc) {
				t.Fatalf("round trip of %d bytes: %d bytes, %v", len(doc), len(got), err)
			}
		}
		c.advance(time.Hour)
		if _, err := s.GetExport(ctx, "pr_1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("expired: %v", err)
		}
		_ = s.PutExport(ctx, "pr_2", big)
		if ok, err := s.DeleteExport(ctx, "pr_2"); !ok || err != nil {
			t.Fatalf("delete: %v %v", ok, err)
		}
		if ok, err := s.DeleteExport(ctx, "pr_2"); ok || err != nil {
			t.Fatalf("delete again: %v %v", ok, err)
		}
		if _, err := s.GetExport(ctx, "pr_2"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("after delete: %v", err)
		}
	})
}

// pendingIs waits for Pending to list exactly ids, in order (a DynamoDB index is eventually
// consistent).
func pendingIs(t *testing.T, s RequestStore, ids ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := s.Pending(context.Background())
		var have []string
		for _, r := range got {
			have = append(have, r.ID)
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
	runStoreConformance(t, func(_ *testing.T, ttl time.Duration, now func() time.Time) RequestStore {
		return NewMemStore(ttl, now)
	})
}
