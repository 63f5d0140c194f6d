package segment

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/activations"
	"github.com/serverless-cdp/cdp/internal/change"
	"github.com/serverless-cdp/cdp/internal/consent"
	"github.com/serverless-cdp/cdp/internal/privacy"
)

// privacyEnv is a handler test environment with one audience of buyers and an order count.
func privacyEnv(t *testing.T) (*env, *AudienceView) {
	t.Helper()
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.sv.SaveTrait(ctx, ComputedTrait{Name: "Orders", Kind: KindCount, Event: EventFilter{Name: "Order Completed"}}); err != nil {
		t.Fatal(err)
	}
	buyers, err := e.sv.SaveAudience(ctx, *aud(t, "", "Buyers", `{"event":{"name":"Order Completed"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.h.RunBackfills(ctx); err != nil {
		t.Fatal(err)
	}
	return e, buyers
}

// export runs the holder's Export and returns the items by kind, as JSON.
func export(t *testing.T, h privacy.Holder, p privacy.Person) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	err := h.Export(context.Background(), p, func(kind string, item any) error {
		b, err := json.Marshal(item)
		out[kind] = append(out[kind], string(b))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func counts(items map[string][]string) map[string]int {
	n := map[string]int{}
	for k, v := range items {
		n[k] = len(v)
	}
	return n
}

// noMore checks that nothing was published beyond the first n activation records.
func (e *env) noMore(t *testing.T, n int) {
	t.Helper()
	if got := e.read(n+1, time.Second); len(got) != n {
		t.Fatalf("%d activation records published after the erasure: %+v", len(got)-n, got[n:])
	}
}

// TestEraseThenRedeliveryBringsNothingBack: the holder exports and erases the same kinds and
// counts; afterwards the profile's change records — redelivered, or new ones still in flight —
// store nothing and publish nothing, on a process that never saw the profile (a cold cache:
// the tombstone alone decides) and on one whose cache holds the state from before the erasure
// when the blocklist (Options.Erased) is wired, as in production. Dropped records are counted.
func TestEraseThenRedeliveryBringsNothingBack(t *testing.T) {
	e, buyers := privacyEnv(t)
	ctx := context.Background()
	first := chg("p1", 1, `{"plan":"pro"}`, track("m1", "Order Completed", t0.Add(-time.Minute), `{}`))
	first.Identifiers = append(first.Identifiers, change.Identifier{Type: "email", Value: "ann@example.com"})
	e.send(t, first)
	published := len(e.read(3, 3*time.Second)) // entered, traits, event
	holder := NewHolder(e.st, e.clock.Now)
	p := privacy.Person{Profiles: []string{"p1"}}
	exported := export(t, holder, p)
	want := map[string]int{KindProfileState: 1, KindMemberships: 1, KindRegistration: 1}
	if !maps.Equal(counts(exported), want) || !strings.Contains(exported[KindProfileState][0], "ann@example.com") {
		t.Fatalf("export: %v", exported)
	}
	erased, err := holder.Erase(ctx, p)
	if err != nil || !maps.Equal(erased, want) {
		t.Fatalf("erase: %v %v, exported %v", erased, err, want)
	}
	if again, err := holder.Erase(ctx, p); err != nil || len(again) != 0 {
		t.Fatalf("second erase: %v %v", again, err)
	}

	later := chg("p1", 2, `{"plan":"pro"}`, track("m2", "Order Completed", t0, `{}`))
	cold := NewHandler(e.st, &MemPublisher{}, Options{Clock: e.clock.Now, DefCacheTTL: time.Nanosecond})
	warm := e.h
	warm.opt.Erased = erasedSet{"p1": true}
	for _, h := range []*Handler{cold, warm} {
		e.h = h
		if resp := e.send(t, first, later); len(resp.BatchItemFailures) != 0 {
			t.Fatalf("failures: %v", resp.BatchItemFailures)
		}
	}
	if got := cold.pub.(*groupPublisher).pub.(*MemPublisher).Records(); len(got) != 0 {
		t.Fatalf("the cold process published %d records", len(got))
	}
	e.noMore(t, published)
	if left := export(t, holder, p); len(left) != 0 {
		t.Fatalf("after redelivery: %v", left)
	}
	if n, _ := e.st.Size(ctx, buyers.ID); n != 0 {
		t.Fatalf("members after redelivery: %d", n)
	}
	if _, err := e.sv.Profile(ctx, "p1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("profile view of an erased profile: %v", err)
	}
	if n, err := e.st.Dropped(ctx); err != nil || n != 4 {
		t.Fatalf("dropped %d %v, want 4 (two records, twice)", n, err)
	}
}

type erasedSet map[string]bool

func (s erasedSet) Erased(_ context.Context, pid string) (bool, error) { return s[pid], nil }

// TestMergeOfAnErasedProfileDoesNotBringItBack: a change still in flight that names an erased
// profile in MergedFrom merges nothing of it into the survivor, and the erased profile stays
// erased.
func TestMergeOfAnErasedProfileDoesNotBringItBack(t *testing.T) {
	e, buyers := privacyEnv(t)
	ctx := context.Background()
	e.send(t, chg("p1", 1, `{}`, track("m1", "Order Completed", t0.Add(-time.Minute), `{}`)))
	holder := NewHolder(e.st, e.clock.Now)
	if _, err := holder.Erase(ctx, privacy.Person{Profiles: []string{"p1"}}); err != nil {
		t.Fatal(err)
	}
	tomb := load(t, e.st, "p1").State.Ver
	merge := chg("p2", 1, `{}`, track("m2", "Page Viewed", t0, `{}`))
	merge.MergedFrom = []string{"p1"}
	e.send(t, merge)
	pv, err := e.sv.Profile(ctx, "p2")
	if err != nil {
		t.Fatal(err)
	}
	if len(pv.Audiences) != 0 || string(pv.ComputedTraits["orders"]) != "0" {
		t.Fatalf("the survivor absorbed the erased profile: %+v", pv)
	}
	if ms, _, _ := e.st.Members(ctx, buyers.ID, 10, ""); len(ms) != 0 {
		t.Fatalf("members: %+v", ms)
	}
	if l := load(t, e.st, "p1"); l.State == nil || !l.State.Erased || l.State.Ver != tomb || l.State.MergedInto != "" {
		t.Fatalf("p1 after the merge: %+v (tombstone version %d)", l.State, tomb)
	}
}

// TestErasedProfilesDroppedBeforeLoading: with Options.Erased, a profile's change records are
// dropped (counted) without reading or writing its state: not even a tombstone appears.
func TestErasedProfilesDroppedBeforeLoading(t *testing.T) {
	e, _ := privacyEnv(t)
	e.h.opt.Erased = erasedSet{"p1": true}
	e.send(t, chg("p1", 1, `{}`, track("m1", "Order Completed", t0, `{}`)), chg("p2", 1, `{}`))
	if l := load(t, e.st, "p1"); l.State != nil {
		t.Fatalf("p1 state: %+v", l.State)
	}
	if l := load(t, e.st, "p2"); l.State == nil {
		t.Fatal("p2 (not erased) was not stored")
	}
	if n, _ := e.st.Dropped(context.Background()); n != 1 {
		t.Fatalf("dropped %d, want 1", n)
	}
}

// TestTickAndBackfillSkipErased: a backfill of a new definition and the schedule never
// recreate an erased profile's state.
func TestTickAndBackfillSkipErased(t *testing.T) {
	e, _ := privacyEnv(t)
	ctx := context.Background()
	e.send(t, chg("p1", 1, `{}`, track("m1", "Order Completed", t0, `{}`)))
	published := len(e.read(3, 3*time.Second))
	if _, err := NewHolder(e.st, e.clock.Now).Erase(ctx, privacy.Person{Profiles: []string{"p1"}}); err != nil {
		t.Fatal(err)
	}
	// Bypass the registry the erasure emptied: evaluate the tombstone as a backfill and a
	// tick would.
	cat, err := e.h.catalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []mode{{backfill: true}, {tick: true}} {
		if err := e.h.process(ctx, cat, "p1", m); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.sv.SaveAudience(ctx, *aud(t, "", "Recent", `{"event":{"name":"Order Completed","within":{"hours":1}}}`)); err != nil {
		t.Fatal(err)
	}
	must(t, e.h.RunBackfills(ctx))
	e.clock.Add(2 * time.Hour)
	if _, err := e.h.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if l := load(t, e.st, "p1"); l.State == nil || !l.State.Erased {
		t.Fatalf("p1: %+v", l.State)
	}
	e.noMore(t, published)
}

// TestConsentPassThrough: the state keeps the consent of the newest change record that carries
// one; audience and trait records carry its preferences, forwarded events none (they are
// checked against their own context).
func TestConsentPassThrough(t *testing.T) {
	e, _ := privacyEnv(t)
	prof := func(ads bool) *consent.Profile {
		return &consent.Profile{Categories: map[string]consent.Category{"ads": {Granted: ads, At: t0}}}
	}
	r1 := chg("p1", 2, `{}`, track("m1", "Order Completed", t0, `{}`))
	r1.Consent = prof(true)
	e.send(t, r1)
	recs := e.read(3, 3*time.Second)
	for _, r := range recs {
		want := consent.Preferences{"ads": true}
		if r.Kind == activations.KindEvent {
			want = nil
		}
		if !maps.Equal(r.Consent, want) {
			t.Fatalf("%s record consent %v, want %v", r.Kind, r.Consent, want)
		}
	}
	stale := chg("p1", 1, `{}`)
	stale.Consent = prof(false)                                        // an older record version: ignored
	r2 := chg("p1", 3, `{}`, track("m2", "Order Completed", t0, `{}`)) // no consent: kept
	e.send(t, stale, r2)
	recs = e.read(5, 3*time.Second)
	last := recs[len(recs)-1]
	for _, r := range recs[3:] {
		if r.Kind == activations.KindTraitsChanged {
			last = r
		}
	}
	if last.Kind != activations.KindTraitsChanged || !maps.Equal(last.Consent, consent.Preferences{"ads": true}) {
		t.Fatalf("traits record after a stale consent: %+v", last)
	}
	r3 := chg("p1", 4, `{}`)
	r3.Consent = prof(false) // consent alone changes the state
	e.send(t, r3)
	if l := load(t, e.st, "p1"); !maps.Equal(l.State.Consent.Preferences(), consent.Preferences{"ads": false}) {
		t.Fatalf("stored consent: %+v", l.State.Consent)
	}
}

// staleStore answers every eventually consistent load with "no state stored", as DynamoDB may
// right after the first write of a profile.
type staleStore struct{ Stores }

func (s staleStore) Load(ctx context.Context, pid string, consistent bool) (*Snapshot, error) {
	if !consistent {
		return NewSnapshot(nil, nil), nil
	}
	return s.Stores.Load(ctx, pid, consistent)
}

// TestStaleReadOfAnErasedProfileLeavesNothing: a change for a profile erased before the stage
// ever stored it, read eventually consistent as absent, is evaluated as a new profile; its
// commit fails on the tombstone, the consistent retry drops it, and nothing of the attempt (the
// registry entry a new profile gets first) is left.
func TestStaleReadOfAnErasedProfileLeavesNothing(t *testing.T) {
	e, _ := privacyEnv(t)
	ctx := context.Background()
	holder := NewHolder(e.st, e.clock.Now)
	p := privacy.Person{Profiles: []string{"p9"}}
	if _, err := holder.Erase(ctx, p); err != nil {
		t.Fatal(err)
	}
	e.h = NewHandler(staleStore{e.st}, &MemPublisher{}, Options{Clock: e.clock.Now, DefCacheTTL: time.Nanosecond})
	if resp := e.send(t, chg("p9", 1, `{"plan":"pro"}`)); len(resp.BatchItemFailures) != 0 {
		t.Fatalf("failures: %v", resp.BatchItemFailures)
	}
	if left := export(t, holder, p); len(left) != 0 {
		t.Fatalf("left after a stale attempt: %v", left)
	}
	if n, _ := e.st.Dropped(ctx); n != 1 {
		t.Fatalf("dropped %d, want 1", n)
	}
}
