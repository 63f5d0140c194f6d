package privacy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

var ctx = context.Background()

// piiOf lists the identifier values and profile ids of Ann, none of which may remain in a
// completed request.
var annPII = []string{"ann@example.com", "ann-77", "dev-a", "dev-b", "prof_ann1", "prof_ann2"}

func assertScrubbed(t *testing.T, s RequestStore, id string) {
	t.Helper()
	r, err := s.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(r)
	for _, v := range annPII {
		if strings.Contains(strings.ToLower(string(b)), v) {
			t.Errorf("stored request %s still holds %q: %s", id, v, b)
		}
	}
}

func TestDeleteErasesEveryHolderAndScrubsTheRequest(t *testing.T) {
	w := newWorld()
	r := w.submit(TypeDelete, " email:Ann@Example.com ")
	if r.Identifiers[0] != "email:Ann@Example.com" {
		t.Fatalf("identifier not trimmed: %q", r.Identifiers[0])
	}
	got, err := w.runner().RunOne(ctx, r.ID)
	if err != nil || got.Status != StatusCompleted || got.Step != StepDone || got.CompletedAt.IsZero() || got.StartedAt.IsZero() {
		t.Fatalf("run: %+v %v", got, err)
	}
	want := map[string]map[string]int{
		"identity":   {"events": 4, "traits": 4, "identifiers": 4},
		"segments":   {"audiences": 4, "computed_traits": 4},
		"deliveries": {"deliveries": 4},
	}
	if !reflect.DeepEqual(got.Results, want) {
		t.Fatalf("results %v, want %v", got.Results, want)
	}
	if left := w.left(); strings.Contains(left, "ann") || !strings.Contains(left, "prof_bob") {
		t.Fatalf("left: %s", left)
	}
	if w.block.blocked["prof_ann1"] != DefaultErasedTTL || w.block.blocked["prof_ann2"] != DefaultErasedTTL || len(w.block.suppressed) != 0 {
		t.Fatalf("blocklist: %v %v", w.block.blocked, w.block.suppressed)
	}
	if fmt.Sprint(w.sleeps) != "[3s]" {
		t.Fatalf("waited %v, want the propagation delay once", w.sleeps)
	}
	if w.notifier.count() != 1 || w.notifier.notices[0].Type != TypeDelete || len(w.notifier.notices[0].Identifiers) != 4 ||
		len(got.Notices) != 1 || got.Notices[0].Status != "delivered" {
		t.Fatalf("notices: %+v %+v", w.notifier.notices, got.Notices)
	}
	if got.Labels[0] != "email:A…@E….com" || len(got.Hashes) != 4 || got.Identifiers != nil || got.Person != nil {
		t.Fatalf("audit: %+v", got)
	}
	assertScrubbed(t, w.store, r.ID)
}

// TestEveryStepResumes crashes the runner right after each persisted step in turn: a new run
// finishes the request with the same end state as an uninterrupted one, and no notice is sent
// twice.
func TestEveryStepResumes(t *testing.T) {
	ref := newWorld()
	rr := ref.submit(TypeSuppressWithDelete, "email:ann@example.com")
	want, err := ref.runner().RunOne(ctx, rr.ID)
	if err != nil || want.Status != StatusCompleted {
		t.Fatalf("reference run: %+v %v", want, err)
	}
	total := ref.store.updates
	if total < 7 {
		t.Fatalf("only %d persisted steps", total)
	}
	// The last update releases the lease of a finished request: a crash there changes nothing.
	for k := 1; k < total; k++ {
		t.Run(fmt.Sprint("crash after update ", k), func(t *testing.T) {
			w := newWorld()
			w.store.crashAt = k
			r := w.submit(TypeSuppressWithDelete, "email:ann@example.com")
			if _, err := w.runner().RunOne(ctx, r.ID); !errors.Is(err, errCrash) {
				t.Fatalf("first run: %v, want the crash", err)
			}
			w.clock.advance(MaxLease) // had the run died, its lease would have kept others out until now
			if err := w.runner().Run(ctx); err != nil {
				t.Fatal(err)
			}
			got, _ := w.store.Get(ctx, r.ID)
			if got.Status != StatusCompleted || !reflect.DeepEqual(got.Results, want.Results) ||
				!reflect.DeepEqual(got.Notices, want.Notices) || !reflect.DeepEqual(got.Hashes, want.Hashes) {
				t.Fatalf("end state %+v, want %+v", got, want)
			}
			if w.notifier.count() != 1 {
				t.Fatalf("%d notices sent", w.notifier.count())
			}
			if w.left() != ref.left() || !w.block.isSuppressed("user_id:ann-77") || len(w.block.blocked) != 2 {
				t.Fatalf("left %s, blocklist %v", w.left(), w.block.blocked)
			}
			assertScrubbed(t, w.store, r.ID)
		})
	}
}

// TestConcurrentRunsDoNotShareARequest: while one run works on a request (here: inside a
// holder's erase), another run — the schedule next to the API's inline run — leaves it alone,
// so each holder erases once and the recorded counts are the first erase's.
func TestConcurrentRunsDoNotShareARequest(t *testing.T) {
	w := newWorld()
	r := w.submit(TypeDelete, "email:ann@example.com")
	var inner Request
	w.holders[0].onErase = func() error {
		var err error
		inner, err = w.runner().RunOne(ctx, r.ID)
		return err
	}
	got, err := w.runner().RunOne(ctx, r.ID)
	if err != nil || got.Status != StatusCompleted {
		t.Fatalf("run: %+v %v", got, err)
	}
	if inner.Step != StepErase || inner.Terminal() {
		t.Fatalf("the concurrent run went on with the request: %+v", inner)
	}
	for i, h := range w.holders {
		if h.erases != 1 {
			t.Errorf("holder %d erased %d times", i, h.erases)
		}
	}
	if after, _ := w.store.Get(ctx, r.ID); after.LeaseOwner != "" {
		t.Errorf("the lease was not released: %+v", after)
	}
}

// TestDeadRunnersLeaseExpires: a run that died holding the lease keeps other runs out until
// the lease ends, then the next run goes on.
func TestDeadRunnersLeaseExpires(t *testing.T) {
	w := newWorld()
	r := w.submit(TypeDelete, "email:ann@example.com")
	if err := w.store.Update(ctx, r.ID, func(cur *Request) error {
		cur.LeaseOwner, cur.LeaseUntil = "dead", w.clock.now().Add(time.Minute)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	before, _ := w.store.Get(ctx, r.ID)
	if got, err := w.runner().RunOne(ctx, r.ID); err != nil || got.Version != before.Version {
		t.Fatalf("a run during another's lease changed the request: %+v %v", got, err)
	}
	w.clock.advance(time.Minute + time.Second)
	if got, err := w.runner().RunOne(ctx, r.ID); err != nil || got.Status != StatusCompleted {
		t.Fatalf("after the lease: %+v %v", got, err)
	}
}

// TestExportAndEraseSameList: what export returns per holder and kind is what delete erases,
// and after the delete an export finds nothing.
func TestExportAndEraseSameList(t *testing.T) {
	w := newWorld()
	rn := w.runner()
	exp := w.submit(TypeExport, "user_id:ann-77")
	if got, err := rn.RunOne(ctx, exp.ID); err != nil || got.Status != StatusCompleted {
		t.Fatalf("export: %+v %v", got, err)
	}
	doc, err := w.store.GetExport(ctx, exp.ID)
	if err != nil {
		t.Fatal(err)
	}
	var parsed map[string]json.RawMessage
	if err := json.Unmarshal(doc, &parsed); err != nil {
		t.Fatal(err)
	}
	var ids []string
	_ = json.Unmarshal(parsed["identifiers"], &ids)
	if string(parsed["requestId"]) != `"`+exp.ID+`"` || len(ids) != 4 || !strings.Contains(string(parsed["identity"]), "events of prof_ann1 Paris") {
		t.Fatalf("export document: %s", doc)
	}
	exported, _ := w.store.Get(ctx, exp.ID)
	del := w.submit(TypeDelete, "anonymous_id:dev-a")
	erased, err := rn.RunOne(ctx, del.ID)
	if err != nil || erased.Status != StatusCompleted {
		t.Fatalf("delete: %+v %v", erased, err)
	}
	if !reflect.DeepEqual(exported.Results, erased.Results) {
		t.Fatalf("export counted %v, delete erased %v", exported.Results, erased.Results)
	}
	again := w.submit(TypeExport, "user_id:ann-77")
	after, _ := rn.RunOne(ctx, again.ID)
	for h, kinds := range after.Results {
		for k, n := range kinds {
			if n != 0 {
				t.Errorf("after delete, export still finds %d %s in %s", n, k, h)
			}
		}
	}
	assertScrubbed(t, w.store, exp.ID)
}

func TestSuppressAndUnsuppress(t *testing.T) {
	w := newWorld()
	rn := w.runner()
	s := w.submit(TypeSuppress, "user_id:ann-77")
	got, err := rn.RunOne(ctx, s.ID)
	if err != nil || got.Status != StatusCompleted || got.Results["blocklist"]["identifiers"] != 4 {
		t.Fatalf("suppress: %+v %v", got, err)
	}
	if !w.block.isSuppressed("email:ann@example.com") || !w.block.isSuppressed("anonymous_id:dev-a") || w.block.isSuppressed("email:bob@example.com") {
		t.Fatalf("suppressed: %v", w.block.suppressed)
	}
	if len(w.sleeps) != 1 || w.sleeps[0] != w.block.PropagationDelay() {
		t.Fatalf("suppress must complete only once in force at every stage (slept %v)", w.sleeps)
	}
	if labels := w.block.labels[s.ID]; labels[0] != "user_id:a…(6)" {
		t.Fatalf("labels: %v", labels)
	}
	if w.left() != newWorld().left() || w.notifier.count() != 0 || len(w.block.blocked) != 0 {
		t.Fatal("suppress erased, blocked or notified")
	}
	u := w.submit(TypeUnsuppress, "email:Ann@Example.COM")
	got, err = rn.RunOne(ctx, u.ID)
	if err != nil || got.Status != StatusCompleted || got.Results["blocklist"]["identifiers"] != 4 || w.block.isSuppressed("user_id:ann-77") {
		t.Fatalf("unsuppress: %+v %v %v", got, err, w.block.suppressed)
	}
	if len(w.sleeps) != 2 {
		t.Fatalf("unsuppress must complete only once in force at every stage (slept %v)", w.sleeps)
	}
	assertScrubbed(t, w.store, s.ID)
	assertScrubbed(t, w.store, u.ID)
}

// TestRunStopsBetweenSteps: a slow holder takes the budget; Run stops before the next step
// and the next Run goes on from there.
func TestRunStopsBetweenSteps(t *testing.T) {
	w := newWorld()
	w.holders[1].onErase = func() error { w.clock.advance(20 * time.Second); return nil }
	r := w.submit(TypeDelete, "email:ann@example.com")
	dctx, cancel := context.WithDeadline(ctx, w.clock.now().Add(25*time.Second))
	defer cancel()
	if err := w.runner().Run(dctx); err != nil {
		t.Fatal(err)
	}
	got, _ := w.store.Get(ctx, r.ID)
	if got.Status != StatusRunning || got.Step != StepErase || len(got.Results) != 2 || w.holders[2].erases != 0 {
		t.Fatalf("after the first run: %+v (deliveries erased %d times)", got, w.holders[2].erases)
	}
	if err := w.runner().Run(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ = w.store.Get(ctx, r.ID)
	if got.Status != StatusCompleted || len(got.Results) != 3 || w.holders[1].erases != 1 {
		t.Fatalf("after the second run: %+v (segments erased %d times)", got, w.holders[1].erases)
	}
}

// TestWaitLeftToALaterRun: with less budget than the propagation delay, the run stops at the
// wait without sleeping; a later run after the instant erases.
func TestWaitLeftToALaterRun(t *testing.T) {
	w := newWorld()
	w.block.delay = time.Minute
	r := w.submit(TypeDelete, "email:ann@example.com")
	dctx, cancel := context.WithDeadline(ctx, w.clock.now().Add(20*time.Second))
	defer cancel()
	got, err := w.runner().RunOne(dctx, r.ID)
	if err != nil || got.Step != StepWait || len(w.sleeps) != 0 || !got.WaitUntil.Equal(w.clock.now().Add(time.Minute)) {
		t.Fatalf("first run: %+v %v %v", got, err, w.sleeps)
	}
	w.clock.advance(time.Minute)
	if got, err = w.runner().RunOne(ctx, r.ID); err != nil || got.Status != StatusCompleted || len(w.sleeps) != 0 {
		t.Fatalf("second run: %+v %v", got, err)
	}
}

// TestProfilesMergedDuringTheWait are blocked and waited for too, then erased.
func TestProfilesMergedDuringTheWait(t *testing.T) {
	w := newWorld()
	w.graph.onResolve = func(g *fakeGraph, n int) {
		if n == 2 { // a new device of Ann's is merged while the first wait runs
			g.mu.Lock()
			g.profiles["prof_ann3"] = []string{"anonymous_id:dev-c", "user_id:ann-77"}
			g.mu.Unlock()
		}
	}
	for _, h := range w.holders {
		h.items["prof_ann3"] = map[string][]string{"late": {"x"}}
	}
	r := w.submit(TypeSuppressWithDelete, "email:ann@example.com")
	got, err := w.runner().RunOne(ctx, r.ID)
	if err != nil || got.Status != StatusCompleted || got.Rounds != 1 || len(w.sleeps) != 2 {
		t.Fatalf("run: %+v %v %v", got, err, w.sleeps)
	}
	if _, ok := w.block.blocked["prof_ann3"]; !ok || !w.block.isSuppressed("anonymous_id:dev-c") || strings.Contains(w.left(), "ann3") {
		t.Fatalf("late profile: blocked %v, left %s", w.block.blocked, w.left())
	}
}

func TestNoticesRetriedThenRecordedAsFailed(t *testing.T) {
	w := newWorld()
	w.notifier.failFirst = 1
	r := w.submit(TypeDelete, "email:ann@example.com")
	rn := w.runner()
	got, _ := rn.RunOne(ctx, r.ID)
	if got.Status != StatusRunning || got.Step != StepNotify || got.Notices[0].Status != "failed" {
		t.Fatalf("first run: %+v", got)
	}
	if got, _ = rn.RunOne(ctx, r.ID); got.Status != StatusCompleted || got.Notices[0].Status != "delivered" || w.notifier.count() != 2 {
		t.Fatalf("second run: %+v", got)
	}

	w = newWorld()
	w.notifier.failFirst = 100
	r = w.submit(TypeDelete, "email:ann@example.com")
	rn = w.runner(func(o *Options) { o.MaxNoticeAttempts = 3 })
	for range 5 {
		got, _ = rn.RunOne(ctx, r.ID)
	}
	if got.Status != StatusCompleted || got.Notices[0].Status != "failed" || w.notifier.count() != 3 {
		t.Fatalf("bounded retries: %+v, %d notices", got, w.notifier.count())
	}
}

func TestFailedStepRetriedThenFailsScrubbed(t *testing.T) {
	w := newWorld()
	calls := 0
	w.holders[0].onErase = func() error {
		calls++
		if calls < 3 {
			return errors.New("throttled erasing ann@example.com")
		}
		return nil
	}
	r := w.submit(TypeDelete, "email:ann@example.com")
	rn := w.runner()
	got, err := rn.RunOne(ctx, r.ID)
	if err != nil || got.Status != StatusRunning || got.Attempts != 1 || strings.Contains(got.Error, "ann@example.com") || !strings.Contains(got.Error, "a…@e….com") {
		t.Fatalf("first run: %+v %v", got, err)
	}
	_, _ = rn.RunOne(ctx, r.ID)
	if got, _ = rn.RunOne(ctx, r.ID); got.Status != StatusCompleted || got.Error != "" {
		t.Fatalf("third run: %+v", got)
	}

	w = newWorld()
	w.holders[0].onErase = func() error { return errors.New("broken store") }
	r = w.submit(TypeDelete, "email:ann@example.com")
	rn = w.runner(func(o *Options) { o.MaxAttempts = 2 })
	for range 4 {
		got, _ = rn.RunOne(ctx, r.ID)
	}
	if got.Status != StatusFailed || !strings.Contains(got.Error, "broken store") || w.holders[0].erases != 2 {
		t.Fatalf("failed: %+v (%d erases)", got, w.holders[0].erases)
	}
	assertScrubbed(t, w.store, r.ID)
}

// TestRequestsHolder: a delete removes earlier export results about the person and the
// identifiers of earlier requests about them, found by keyed hash under any of their
// identifiers; it leaves other people's alone.
func TestRequestsHolder(t *testing.T) {
	w := newWorld()
	holder := NewRequestsHolder(w.store, testHasher)
	rn := w.runner(func(o *Options) { o.Holders = append(o.Holders, holder) })
	exp := w.submit(TypeExport, "anonymous_id:dev-b")
	if got, _ := rn.RunOne(ctx, exp.ID); got.Status != StatusCompleted {
		t.Fatalf("export: %+v", got)
	}
	bobExp := w.submit(TypeExport, "email:bob@example.com")
	_, _ = rn.RunOne(ctx, bobExp.ID)
	waiting := w.submit(TypeSuppress, "user_id:ann-77") // not run yet: holds cleartext
	del := w.submit(TypeDelete, "email:ann@example.com")
	got, err := rn.RunOne(ctx, del.ID)
	if err != nil || got.Status != StatusCompleted {
		t.Fatalf("delete: %+v %v", got, err)
	}
	if want := (map[string]int{KindExportResults: 1, KindRequests: 1}); !reflect.DeepEqual(got.Results[HolderName], want) {
		t.Fatalf("privacy_requests erased %v, want %v", got.Results[HolderName], want)
	}
	if _, err := w.store.GetExport(ctx, exp.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("earlier export result: %v", err)
	}
	if _, err := w.store.GetExport(ctx, bobExp.ID); err != nil {
		t.Fatalf("bob's export result: %v", err)
	}
	if wr, _ := w.store.Get(ctx, waiting.ID); wr.Status != StatusFailed || !strings.Contains(wr.Error, del.ID) {
		t.Fatalf("waiting request: %+v", wr)
	}
	for _, id := range []string{exp.ID, waiting.ID, del.ID} {
		assertScrubbed(t, w.store, id)
	}
	// Export lists what erase would remove: nothing is left.
	var kinds []string
	_ = holder.Export(ctx, Person{Identifiers: []string{"email:ann@example.com"}}, func(k string, _ any) error {
		kinds = append(kinds, k)
		return nil
	})
	if len(kinds) != 0 {
		t.Fatalf("after delete, the holder exports %v", kinds)
	}
}
