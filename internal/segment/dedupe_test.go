package segment

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/activations"
	"github.com/serverless-cdp/cdp/internal/change"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

// stamped is a record whose events carry the given stamps ("origin/seq" pairs in order).
func stamped(pid string, ver int64, evs []tracking.Message, stamps ...change.Stamp) change.Record {
	r := chg(pid, ver, "", evs...)
	r.Stamps = stamps
	return r
}

func order(id string, revenue int) tracking.Message {
	return track(id, "Order Completed", t0.Add(-time.Hour), fmt.Sprintf(`{"revenue":%d}`, revenue))
}

func st(p string, seq int64) change.Stamp { return change.Stamp{Profile: p, Seq: seq} }

// countsOf reads the orders and spend computed traits and the distinct and total forwarded
// event records.
func (e *env) countsOf(t *testing.T, pid string, want int) (orders, spend string, distinct, total int) {
	t.Helper()
	pv, err := e.sv.Profile(context.Background(), pid)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, r := range e.read(want, time.Second) {
		if r.Kind == activations.KindEvent {
			ids[r.ID] = true
			total++
		}
	}
	return string(pv.ComputedTraits["orders"]), string(pv.ComputedTraits["spend"]), len(ids), total
}

func saveOrderTraits(t *testing.T, e *env) {
	t.Helper()
	ctx := context.Background()
	for _, ct := range []ComputedTrait{
		{Name: "Orders", Kind: KindCount, Event: EventFilter{Name: "Order Completed"}},
		{Name: "Spend", Kind: KindSum, Event: EventFilter{Name: "Order Completed"}, Property: "revenue"},
	} {
		if _, err := e.sv.SaveTrait(ctx, ct); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.h.RunBackfills(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestStampsCountEachEventOnce: a redelivered record, a re-emitted duplicate in another record
// (same stamp), a gap filled later (out of order) and two records of one batch with the same
// stamp each count the event once, and forward it once.
func TestStampsCountEachEventOnce(t *testing.T) {
	e := newEnv(t)
	saveOrderTraits(t, e)
	r1 := stamped("p1", 1, []tracking.Message{order("m1", 1), order("m2", 2)}, st("p1", 1), st("p1", 2))
	e.send(t, r1)
	e.send(t, r1) // redelivered
	// m1 re-emitted by another record with its original stamp; m4 skips seq 3.
	e.send(t, stamped("p1", 2, []tracking.Message{order("m1", 1), order("m4", 8)}, st("p1", 1), st("p1", 4)))
	// seq 3 arrives late, twice in one batch (two records), then again.
	r3 := stamped("p1", 3, []tracking.Message{order("m3", 4)}, st("p1", 3))
	e.send(t, r3, r3)
	e.send(t, r3)
	orders, spend, distinct, total := e.countsOf(t, "p1", 4)
	if orders != "4" || spend != "15" || distinct != 4 || total != 4 {
		t.Fatalf("orders %s spend %s, %d distinct / %d forwarded events: want 4, 15, 4, 4", orders, spend, distinct, total)
	}
}

// TestMergeWithOverlappingDelivery: b's events move to a with b's dedupe map, so b's events
// re-emitted on a (with their original stamps) and a redelivered merge record count once.
func TestMergeWithOverlappingDelivery(t *testing.T) {
	e := newEnv(t)
	saveOrderTraits(t, e)
	e.send(t, stamped("a", 1, []tracking.Message{order("m1", 1)}, st("a", 1)),
		stamped("b", 1, []tracking.Message{order("m2", 2), order("m3", 4)}, st("b", 1), st("b", 2)))
	merge := stamped("a", 2, []tracking.Message{order("m2", 2), order("m4", 8)}, st("b", 1), st("a", 2))
	merge.MergedFrom = []string{"b"}
	e.send(t, merge)
	e.send(t, merge)
	e.send(t, stamped("a", 3, []tracking.Message{order("m3", 4)}, st("b", 2)))
	orders, spend, distinct, total := e.countsOf(t, "a", 4)
	if orders != "4" || spend != "15" || distinct != 4 || total != 4 {
		t.Fatalf("orders %s spend %s, %d distinct / %d forwarded events: want 4, 15, 4, 4", orders, spend, distinct, total)
	}
}

// TestRandomDeliveryCountsOnce: events of two origins delivered in random batches, with
// duplicates, redeliveries and bounded reordering, and a merge halfway, count exactly once.
func TestRandomDeliveryCountsOnce(t *testing.T) {
	for seed := range uint64(8) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			e := newEnv(t)
			saveOrderTraits(t, e)
			rng := rand.New(rand.NewPCG(seed, 7))
			const n = 120
			type item struct {
				m tracking.Message
				s change.Stamp
			}
			var items []item
			var sum int
			seqs := map[string]int64{}
			for i := range n {
				origin := "a"
				if i%3 == 0 {
					origin = "b"
				}
				rev := 1 + rng.IntN(100)
				sum += rev
				seqs[origin]++
				items = append(items, item{order(fmt.Sprintf("m%d", i), rev), st(origin, seqs[origin])})
			}
			// Reorder within a distance of 5.
			for i := range items {
				j := min(len(items)-1, i+rng.IntN(5))
				items[i], items[j] = items[j], items[i]
			}
			var batch []change.Record
			ver := int64(0)
			for i, it := range items {
				pid := it.s.Profile
				if i >= n/2 {
					pid = "a" // b was merged into a: its events are re-emitted on a
				}
				ver++
				r := stamped(pid, ver, []tracking.Message{it.m}, it.s)
				if i == n/2 {
					// b's own records are delivered before the merge (a record of b first
					// delivered after b was absorbed revives b: see begin).
					e.send(t, batch...)
					batch = nil
					r.MergedFrom = []string{"b"}
				}
				batch = append(batch, r)
				if rng.IntN(4) == 0 { // a duplicate of an earlier record
					batch = append(batch, batch[rng.IntN(len(batch))])
				}
				if rng.IntN(6) == 0 {
					e.send(t, batch...)
					if rng.IntN(3) == 0 {
						e.send(t, batch...) // redelivered
					}
					batch = nil
				}
			}
			e.send(t, batch...)
			// Forwarded records may repeat (a retried attempt forwards again, same ids).
			orders, spend, distinct, _ := e.countsOf(t, "a", n)
			if orders != fmt.Sprint(n) || spend != fmt.Sprint(sum) || distinct != n {
				t.Fatalf("orders %s spend %s, %d distinct forwarded: want %d, %d, %d", orders, spend, distinct, n, sum, n)
			}
		})
	}
}

// TestUnstampedRecordsDedupeByMessageID: records from before stamps existed are deduplicated by
// message id (the last MaxRecentIDs).
func TestUnstampedRecordsDedupeByMessageID(t *testing.T) {
	e := newEnv(t)
	e.hist = nil // records go unstamped
	saveOrderTraits(t, e)
	r := chg("p1", 1, "", order("m1", 1), order("m2", 2))
	e.send(t, r, r)
	e.send(t, r)
	orders, spend, distinct, total := e.countsOf(t, "p1", 2)
	if orders != "2" || spend != "3" || distinct != 2 || total != 2 {
		t.Fatalf("orders %s spend %s, %d distinct / %d forwarded", orders, spend, distinct, total)
	}
}

// TestBackfillCountsOnlyAppliedEvents: a trait created after a profile's events is built from the
// timeline, counting only the events whose stamps the state has applied; an event on the
// timeline not yet delivered is counted once, when it arrives.
func TestBackfillCountsOnlyAppliedEvents(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.send(t, stamped("p1", 1, []tracking.Message{order("m1", 1), order("m2", 2)}, st("p1", 1), st("p1", 2)))
	late := order("m3", 4)
	e.hist.Add("p1", late, st("p1", 3)) // committed by identity, still in the stream
	saveOrderTraits(t, e)
	orders, spend, _, _ := e.countsOf(t, "p1", 0)
	if orders != "2" || spend != "3" {
		t.Fatalf("after the backfill: orders %s spend %s, want 2 and 3", orders, spend)
	}
	e.send(t, stamped("p1", 2, []tracking.Message{late}, st("p1", 3)))
	if orders, spend, _, _ = e.countsOf(t, "p1", 0); orders != "3" || spend != "7" {
		t.Fatalf("after the late event: orders %s spend %s, want 3 and 7", orders, spend)
	}
	// An edited definition gets a new accumulator, built from the timeline too.
	tv, err := e.sv.TraitByKey(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	edited := *tv.ComputedTrait
	edited.Event.Where = []Predicate{{Key: "revenue", Op: OpGte, Value: []byte(`2`)}}
	if _, err := e.sv.SaveTrait(ctx, edited); err != nil {
		t.Fatal(err)
	}
	if err := e.h.RunBackfills(ctx); err != nil {
		t.Fatal(err)
	}
	if orders, _, _, _ = e.countsOf(t, "p1", 0); orders != "2" {
		t.Fatalf("edited trait: orders %s, want 2", orders)
	}
}

// TestLegacyEventLogUpgrade: a state stored with an event log gets its accumulators from the log,
// and a redelivered message of the log is not counted again.
func TestLegacyEventLogUpgrade(t *testing.T) {
	e := newEnv(t)
	hist := e.hist
	e.hist = nil
	saveOrderTraits(t, e)
	// The timeline has the logged events too: they must not count twice.
	hist.Add("p1", order("m1", 5), change.Stamp{})
	hist.Add("p1", order("m2", 6), change.Stamp{})
	old := NewState("p1")
	old.Legacy = []Event{ev("m1", "Order Completed", 2*day, `{"revenue":5}`), ev("m2", "Order Completed", day, `{"revenue":6}`)}
	b, err := encodeState(old)
	if err != nil {
		t.Fatal(err)
	}
	legacy, err := decodeState(b, 0)
	if err != nil || len(legacy.Legacy) != 2 || len(legacy.Recent) != 16 {
		t.Fatalf("decoded legacy state: %+v %v", legacy, err)
	}
	if err := e.st.Commit(context.Background(), []Write{{State: legacy, Was: NewSnapshot(nil, nil)}}, MaxStateBytes); err != nil {
		t.Fatal(err)
	}
	e.send(t, chg("p1", 2, "", order("m2", 6), order("m3", 7)))
	orders, spend, _, _ := e.countsOf(t, "p1", 0)
	if orders != "3" || spend != "18" {
		t.Fatalf("orders %s spend %s, want 3 and 18", orders, spend)
	}
	l, _ := e.st.Load(context.Background(), "p1", true)
	if len(l.State.Legacy) != 0 {
		t.Fatalf("legacy log kept: %d events", len(l.State.Legacy))
	}
}

// TestPageAndScreenEvents: filters select page and screen views by name, with conditions on
// their properties, apart from track events of the same name.
func TestPageAndScreenEvents(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.sv.SaveTrait(ctx, ComputedTrait{Name: "Pricing views", Kind: KindCount, Event: EventFilter{Type: "page", Name: "Pricing"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sv.SaveTrait(ctx, ComputedTrait{Name: "Screens", Kind: KindUniqueList, Event: EventFilter{Type: "screen", Name: "*"}, Property: "section"}); err != nil {
		t.Fatal(err)
	}
	a, err := e.sv.SaveAudience(ctx, *aud(t, "", "Pricing readers", `{"event":{"type":"page","name":"Pricing","where":[{"key":"plan","op":"eq","value":"pro"}],"within":{"days":7}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.h.RunBackfills(ctx); err != nil {
		t.Fatal(err)
	}
	page := func(id, typ, name, props string) tracking.Message {
		return tracking.Message{Type: typ, MessageID: id, Name: name, Timestamp: t0, ReceivedAt: t0, Properties: []byte(props)}
	}
	e.send(t, chg("p1", 1, "", page("v1", "page", "Pricing", `{"plan":"pro"}`), page("v2", "page", "Pricing", `{"plan":"free"}`),
		track("v3", "Pricing", t0, `{"plan":"pro"}`), page("v4", "screen", "Home", `{"section":"b"}`), page("v5", "screen", "Cart", `{"section":"a"}`)))
	pv, err := e.sv.Profile(ctx, "p1")
	if err != nil || string(pv.ComputedTraits["pricing_views"]) != "2" || string(pv.ComputedTraits["screens"]) != `["a","b"]` || len(pv.Audiences) != 1 || pv.Audiences[0].ID != a.ID {
		t.Fatalf("profile %+v %v", pv, err)
	}
	var ve *ValidationError
	if _, err := e.sv.SaveTrait(ctx, ComputedTrait{Name: "X", Kind: KindCount, Event: EventFilter{Type: "identify", Name: "*"}}); !errors.As(err, &ve) || ve.Field != "event.type" {
		t.Fatalf("bad type: %v", err)
	}
}

// TestBackfillOfUnstampedEvents: events applied without stamps (records from before stamps) are
// found on the timeline by their message ids (the last MaxRecentIDs).
func TestBackfillOfUnstampedEvents(t *testing.T) {
	e := newEnv(t)
	hist := e.hist
	e.hist = nil // records go unstamped
	m1, m2 := order("m1", 1), order("m2", 2)
	e.send(t, chg("p1", 1, "", m1, m2))
	hist.Add("p1", m1, change.Stamp{})
	hist.Add("p1", m2, change.Stamp{})
	hist.Add("p1", order("m3", 4), change.Stamp{}) // not delivered yet
	saveOrderTraits(t, e)
	if orders, spend, _, _ := e.countsOf(t, "p1", 0); orders != "2" || spend != "3" {
		t.Fatalf("orders %s spend %s, want 2 and 3", orders, spend)
	}
}

// TestPreviewOfNewEventConditionReadsTimeline: a draft's event condition that no saved
// definition shares is computed from the timeline for each profile previewed.
func TestPreviewOfNewEventConditionReadsTimeline(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.send(t, chg("p1", 1, "", order("m1", 10), order("m2", 50)), chg("p2", 1, "", order("m3", 20)))
	draft := aud(t, "", "Big orders", `{"event":{"name":"Order Completed","where":[{"key":"revenue","op":"gte","value":30}]}}`)
	pr, err := e.sv.Preview(ctx, *draft, 0)
	if err != nil || pr.Matched != 1 || pr.Scanned != 2 || len(pr.Sample) != 1 || pr.Sample[0] != "p1" {
		t.Fatalf("preview %+v %v", pr, err)
	}
}

// TestMergeIntoNewProfileKeepsAllTime: a profile merged into one the segments stage has not seen
// yet brings its all-time accumulators (older than the timeline keeps) with it.
func TestMergeIntoNewProfileKeepsAllTime(t *testing.T) {
	e := newEnv(t)
	saveOrderTraits(t, e)
	e.send(t, stamped("b", 1, []tracking.Message{order("m1", 1), order("m2", 2)}, st("b", 1), st("b", 2)))
	e.hist = nil // nothing on the timeline any more (past its retention): only the state knows
	h := e.h
	h.opt.History = NewMemHistory()
	merge := stamped("a", 1, []tracking.Message{order("m3", 4)}, st("a", 1))
	merge.MergedFrom = []string{"b"}
	e.send(t, merge)
	if orders, spend, _, _ := e.countsOf(t, "a", 0); orders != "3" || spend != "7" {
		t.Fatalf("orders %s spend %s, want 3 and 7", orders, spend)
	}
}

// TestVoidStampsFillTheGap: a stamp identity allocated to an event that turned out to be stored
// already (change.Record.Void) is marked seen without counting anything, so it leaves no gap
// in the dedupe map, also when the record brings nothing else new; a later real event counts.
func TestVoidStampsFillTheGap(t *testing.T) {
	e := newEnv(t)
	saveOrderTraits(t, e)
	e.send(t, stamped("p1", 1, []tracking.Message{order("m1", 1)}, st("p1", 1)))
	// m1 redelivered: identity allocated seq 2 to it, found it stored, re-emits it with stamp 1.
	dup := stamped("p1", 2, []tracking.Message{order("m1", 1), order("m3", 4)}, st("p1", 1), st("p1", 3))
	dup.Void = []change.Stamp{st("p1", 2)}
	e.send(t, dup)
	// A record with only a re-emitted event and a void stamp still closes its gap.
	only := stamped("p1", 3, []tracking.Message{order("m3", 4)}, st("p1", 3))
	only.Void = []change.Stamp{st("p1", 5), st("p1", 4)}
	e.send(t, only)
	e.send(t, only) // redelivered: nothing changes
	snap, err := e.st.Load(context.Background(), "p1", true)
	if err != nil || snap.State == nil {
		t.Fatalf("load: %+v %v", snap, err)
	}
	if set := snap.State.Seen["p1"]; set == nil || set.High != 5 || len(set.Gaps) != 0 {
		t.Fatalf("dedupe map of p1: %+v, want every number up to 5 seen, no gap", set)
	}
	e.send(t, stamped("p1", 4, []tracking.Message{order("m6", 8)}, st("p1", 6)))
	orders, spend, distinct, total := e.countsOf(t, "p1", 3)
	if orders != "3" || spend != "13" || distinct != 3 || total != 3 {
		t.Fatalf("orders %s spend %s, %d distinct / %d forwarded events: want 3, 13, 3, 3", orders, spend, distinct, total)
	}
}
