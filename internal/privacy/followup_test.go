package privacy

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeArchive is a lagging holder: lines carrying identifiers, each with its arrival time. It
// matches a line by cleartext identifier or, as the archive does in a follow-up, by the keyed
// hash of one of its identifiers, and reads only lines that arrived since Person.Since.
type fakeArchive struct {
	mu      sync.Mutex
	lag     time.Duration
	lines   []fakeLine
	persons []Person // what each Erase was called with
	fail    int      // the next fail Erase calls fail
}

type fakeLine struct {
	ids     []string
	arrived time.Time
}

func (a *fakeArchive) Name() string       { return "archive" }
func (a *fakeArchive) Lag() time.Duration { return a.lag }

func (a *fakeArchive) Export(context.Context, Person, func(string, any) error) error { return nil }

func (a *fakeArchive) add(arrived time.Time, ids ...string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.lines = append(a.lines, fakeLine{ids: ids, arrived: arrived})
}

func (a *fakeArchive) Erase(_ context.Context, p Person) (map[string]int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.persons = append(a.persons, p)
	if a.fail > 0 {
		a.fail--
		return nil, errors.New("archive unavailable")
	}
	n := 0
	a.lines = slices.DeleteFunc(a.lines, func(l fakeLine) bool {
		if !p.Since.IsZero() && l.arrived.Before(p.Since) {
			return false
		}
		for _, id := range l.ids {
			if slices.Contains(p.Identifiers, id) || slices.Contains(p.Hashes, IdentifierHash(testHasher, id)) {
				n++
				return true
			}
		}
		return false
	})
	return map[string]int{"events": n}, nil
}

func (a *fakeArchive) calls() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.persons)
}

func (a *fakeArchive) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.lines)
}

func withArchive(a *fakeArchive) func(*Options) {
	return func(o *Options) { o.Holders = append(o.Holders, a) }
}

func pendingIDs(t *testing.T, s RequestStore) []string {
	t.Helper()
	rs, err := s.Pending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range rs {
		ids = append(ids, r.ID)
	}
	return ids
}

// TestLaggingHolderFollowUp: a delete that erased a lagging holder completes at once with a
// pending follow-up; the schedule leaves it alone (no erase, no write) until the lag has
// passed since that erase began, then erases once more by keyed hash — finding a line that
// landed after the request completed (Firehose's buffer), but not one older than the lower
// bound — adds the count under the holder's kind, and never runs it again. The request holds
// no cleartext at any point after completion.
func TestLaggingHolderFollowUp(t *testing.T) {
	w := newWorld()
	lag := 20 * time.Minute
	a := &fakeArchive{lag: lag}
	start := w.clock.now()
	a.add(start, "email:ann@example.com")
	a.add(start, "anonymous_id:dev-b")
	a.add(start, "email:bob@example.com")
	rn := w.runner(withArchive(a))
	r := w.submit(TypeDelete, "email:ann@example.com")
	got, err := rn.RunOne(ctx, r.ID)
	if err != nil || got.Status != StatusCompleted || got.Results["archive"]["events"] != 2 || len(got.FollowUps) != 1 {
		t.Fatalf("run: %+v %v", got, err)
	}
	f := got.FollowUps[0]
	began := a.persons[0].Since // zero: the first erase reads everything
	if !began.IsZero() || f.Holder != "archive" || f.Status != FollowUpPending || f.Due.Sub(f.Since) != 2*lag+FollowUpMargin ||
		f.Due.Before(start.Add(lag)) || f.Due.After(w.clock.now().Add(lag)) {
		t.Fatalf("follow-up %+v (first erase since %v)", f, began)
	}
	assertScrubbed(t, w.store, r.ID)
	if ids := pendingIDs(t, w.store); !slices.Equal(ids, []string{r.ID}) {
		t.Fatalf("pending %v: the request must stay pending while its follow-up is", ids)
	}

	// Firehose delivers, after the erase, a line of Ann's that was in its buffer; and a line of
	// Ann's older than the follow-up's lower bound (the follow-up does not read so far back).
	a.add(w.clock.now(), "user_id:ann-77")
	a.add(f.Since.Add(-time.Minute), "anonymous_id:dev-a")
	w.clock.advance(f.Due.Add(-time.Second).Sub(w.clock.now()))
	updates := w.store.updates
	if err := rn.Run(ctx); err != nil || a.calls() != 1 || w.store.updates != updates {
		t.Fatalf("before due: %v, %d erases, %d writes", err, a.calls(), w.store.updates-updates)
	}

	w.clock.advance(time.Second)
	if err := rn.Run(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ = w.store.Get(ctx, r.ID)
	f = got.FollowUps[0]
	if a.calls() != 2 || f.Status != FollowUpDone || f.Erased != 1 || !f.DoneAt.Equal(f.Due) || got.Results["archive"]["events"] != 3 || got.Status != StatusCompleted {
		t.Fatalf("after due: %d erases, %+v", a.calls(), got)
	}
	p := a.persons[1]
	if len(p.Identifiers) != 0 || len(p.Profiles) != 0 || !slices.Equal(p.Hashes, got.Hashes) || !p.Since.Equal(f.Since) {
		t.Fatalf("follow-up erased with %+v", p)
	}
	if a.count() != 2 { // Bob's line and Ann's line from before the lower bound
		t.Fatalf("%d lines left, want 2: %+v", a.count(), a.lines)
	}
	assertScrubbed(t, w.store, r.ID)
	if ids := pendingIDs(t, w.store); len(ids) != 0 {
		t.Fatalf("still pending: %v", ids)
	}
	w.clock.advance(time.Hour)
	if err := rn.Run(ctx); err != nil || a.calls() != 2 {
		t.Fatalf("follow-up ran again: %v, %d erases", err, a.calls())
	}
}

// TestFollowUpOnlyForLaggingHolders: holders without lag, suppress and export get no
// follow-up.
func TestFollowUpOnlyForLaggingHolders(t *testing.T) {
	w := newWorld()
	a := &fakeArchive{} // lag 0
	rn := w.runner(withArchive(a))
	r := w.submit(TypeSuppressWithDelete, "email:ann@example.com")
	if got, err := rn.RunOne(ctx, r.ID); err != nil || got.Status != StatusCompleted || len(got.FollowUps) != 0 || !got.Settled() {
		t.Fatalf("lag 0: %+v %v", got, err)
	}
	a.lag = time.Minute
	for _, typ := range []string{TypeSuppress, TypeExport} {
		r := w.submit(typ, "email:bob@example.com")
		if got, err := rn.RunOne(ctx, r.ID); err != nil || got.Status != StatusCompleted || len(got.FollowUps) != 0 {
			t.Fatalf("%s: %+v %v", typ, got, err)
		}
	}
	r = w.submit(TypeSuppressWithDelete, "email:bob@example.com")
	if got, err := rn.RunOne(ctx, r.ID); err != nil || len(got.FollowUps) != 1 {
		t.Fatalf("suppress_with_delete: %+v %v", got, err)
	}
}

// TestFollowUpRetriedThenGivenUp: a failed follow-up is recorded on the follow-up (the request
// stays completed) and retried by the next runs; after MaxAttempts it is given up and the
// request settles.
func TestFollowUpRetriedThenGivenUp(t *testing.T) {
	w := newWorld()
	a := &fakeArchive{lag: time.Minute}
	rn := w.runner(withArchive(a), func(o *Options) { o.MaxAttempts = 3 })
	r := w.submit(TypeDelete, "email:ann@example.com")
	if _, err := rn.RunOne(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	w.clock.advance(time.Minute)
	a.add(w.clock.now(), "email:ann@example.com")
	a.fail = 1
	_ = rn.Run(ctx)
	got, _ := w.store.Get(ctx, r.ID)
	if f := got.FollowUps[0]; got.Status != StatusCompleted || f.Status != FollowUpPending || f.Attempts != 1 || f.Error == "" {
		t.Fatalf("after a failure: %+v", got)
	}
	_ = rn.Run(ctx)
	got, _ = w.store.Get(ctx, r.ID)
	if f := got.FollowUps[0]; f.Status != FollowUpDone || f.Error != "" || f.Erased != 1 || got.Results["archive"]["events"] != 1 {
		t.Fatalf("retried: %+v", got)
	}

	r = w.submit(TypeDelete, "email:bob@example.com")
	if _, err := rn.RunOne(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	w.clock.advance(time.Minute)
	a.fail = 10
	for range 5 {
		_ = rn.Run(ctx)
	}
	got, _ = w.store.Get(ctx, r.ID)
	if f := got.FollowUps[0]; got.Status != StatusCompleted || f.Status != FollowUpFailed || f.Attempts != 3 || !got.Settled() {
		t.Fatalf("given up: %+v", got)
	}
	if a.fail != 7 {
		t.Fatalf("%d failed erases, want 3", 10-a.fail)
	}
}

// TestFollowUpLeased: a follow-up leased by one run (the schedule on two overlapping
// invocations) is not run by another.
func TestFollowUpLeased(t *testing.T) {
	w := newWorld()
	a := &fakeArchive{lag: time.Minute}
	rn := w.runner(withArchive(a))
	r := w.submit(TypeDelete, "email:ann@example.com")
	if _, err := rn.RunOne(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	w.clock.advance(time.Minute)
	if err := w.store.Update(ctx, r.ID, func(cur *Request) error {
		cur.LeaseOwner, cur.LeaseUntil = "other", w.clock.now().Add(time.Minute)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := rn.Run(ctx); err != nil || a.calls() != 1 {
		t.Fatalf("leased: %v, %d erases", err, a.calls())
	}
	w.clock.advance(time.Minute)
	if err := rn.Run(ctx); err != nil || a.calls() != 2 {
		t.Fatalf("lease expired: %v, %d erases", err, a.calls())
	}
}
