package identity

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/serverless-cdp/cdp/internal/change"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

// appendCounter counts the commits written by GraphStore.Append and by transactions.
type appendCounter struct {
	GraphStore
	appends, commits atomic.Int64
}

func (c *appendCounter) Append(ctx context.Context, cm *Commit) ([]Appended, error) {
	c.appends.Add(1)
	return c.GraphStore.Append(ctx, cm)
}

func (c *appendCounter) Commit(ctx context.Context, cm *Commit) error {
	c.commits.Add(1)
	return c.GraphStore.Commit(ctx, cm)
}

// Events of a known person (no new identifier, no merge, nothing logged) are written without
// a transaction; creating a profile, attaching an identifier or merging still is one.
func TestKnownProfileEventsSkipTheTransaction(t *testing.T) { eachBackend(t, testKnownProfileFastPath) }

func testKnownProfileFastPath(t *testing.T, b backend) {
	s, _ := b.open(t)
	st := &appendCounter{GraphStore: s}
	rules, _ := Compile(Rules{})
	proc := NewProcessor(st, StaticRules{rules}, Options{})
	ctx := context.Background()
	run := func(recs ...tracking.Record) []change.Record {
		t.Helper()
		res, chs, err := proc.Process(ctx, recs)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range res {
			if r.Outcome != Processed {
				t.Fatalf("record %d: %v %v", i, r.Outcome, r.Err)
			}
		}
		return chs
	}
	run(rec("identify", "k1", 0, f{"uid": "u", "aid": "a", "traits": `{"plan":"free"}`}))
	if st.appends.Load() != 0 || st.commits.Load() != 1 {
		t.Fatalf("a new profile: %d appends, %d transactions; want 0, 1", st.appends.Load(), st.commits.Load())
	}
	chs := run(rec("track", "k2", 1, f{"uid": "u", "event": "A"}), rec("identify", "k3", 2, f{"uid": "u", "aid": "a", "traits": `{"plan":"pro"}`}))
	if st.appends.Load() != 1 || st.commits.Load() != 1 {
		t.Fatalf("events of a known profile: %d appends, %d transactions; want 1, 1", st.appends.Load(), st.commits.Load())
	}
	p, err := s.Lookup(ctx, NewIdentifier(TypeUserID, "u"))
	if err != nil || p == nil || p.EventCount != 3 || p.Seq != 3 || string(p.Traits["plan"].Value) != `"pro"` {
		t.Fatalf("profile: %+v %v", p, err)
	}
	if len(chs) != 1 || fmt.Sprint(chs[0].Stamps) != fmt.Sprint([]change.Stamp{{Profile: p.ID, Seq: 2}, {Profile: p.ID, Seq: 3}}) ||
		len(chs[0].Void) != 0 || string(chs[0].ChangedTraits["plan"]) != `"pro"` || chs[0].Version != p.Version {
		t.Fatalf("change: %+v (profile at version %d)", chs, p.Version)
	}
	run(rec("identify", "k4", 3, f{"uid": "u", "aid": "b"}))
	if st.commits.Load() != 2 {
		t.Fatalf("a new identifier: %d transactions, want 2", st.commits.Load())
	}
}

// A redelivery the processor does not know (another Lambda committed it) is written by Append:
// the event's put finds it stored, so it is a Duplicate re-emitted with its original stamp,
// the stamp allocated to it goes out as void, and the profile's event count is corrected.
func TestUnknownRedeliveryOnTheFastPath(t *testing.T) { eachBackend(t, testUnknownRedelivery) }

func testUnknownRedelivery(t *testing.T, b backend) {
	e := b.newEnv(t, nil)
	ctx := context.Background()
	e.process(t, rec("identify", "r1", 0, f{"uid": "u", "traits": `{"plan":"free"}`}))
	e.process(t, rec("track", "r2", 1, f{"uid": "u", "event": "A"}))
	other := NewProcessor(e.data.another(), e.proc.rules, Options{SkipLegacyDedupe: true})
	recs := []tracking.Record{rec("track", "r2", 1, f{"uid": "u", "event": "A"}), rec("track", "r3", 2, f{"uid": "u", "event": "B"})}
	res, chs, err := other.Process(ctx, recs)
	if err != nil {
		t.Fatal(err)
	}
	p := e.byID(t, "user_id:u")
	if res[0].Outcome != Duplicate || res[1].Outcome != Processed || res[0].ProfileID != p.ID {
		t.Fatalf("results %+v", res)
	}
	if len(chs) != 1 || len(chs[0].Events) != 2 || chs[0].Traits == nil {
		t.Fatalf("changes %+v", chs)
	}
	got := stampsOf(t, chs)
	if got["r2"] != (change.Stamp{Profile: p.ID, Seq: 2}) || got["r3"] != (change.Stamp{Profile: p.ID, Seq: 4}) ||
		fmt.Sprint(chs[0].Void) != fmt.Sprint([]change.Stamp{{Profile: p.ID, Seq: 3}}) {
		t.Fatalf("stamps %v void %v", got, chs[0].Void)
	}
	if p.EventCount != 3 || p.Seq != 4 {
		t.Fatalf("profile counts %d events, counter %d; want 3 and 4", p.EventCount, p.Seq)
	}
	rules, _ := Compile(Rules{})
	checkInvariants(t, snapshot(t, e), rules)
	checkEmitted(t, e.store, recs, chs)
}

// failingPuts is a store whose Append writes the profile and then fails the puts of the events
// fail selects: those events are not stored. With throttled, the failure says so (Unwritten),
// else it is ambiguous, as a timeout or a crash after the profile's write would be.
type failingPuts struct {
	GraphStore
	fail      func(mid string) bool
	throttled func(mid string) bool
	err       error // the failure (default errPutFailed)
}

var errPutFailed = errors.New("event put failed (test)")

func (s *failingPuts) Append(ctx context.Context, c *Commit) ([]Appended, error) {
	if err := s.Commit(ctx, &Commit{Profiles: c.Profiles}); err != nil {
		return nil, err
	}
	out := make([]Appended, len(c.Events))
	for i, ev := range c.Events {
		if mid := ev.Message.MessageID; s.fail(mid) {
			out[i] = Appended{Err: cmp.Or(s.err, errPutFailed), Unwritten: s.throttled(mid)}
			continue
		}
		err := s.Commit(ctx, &Commit{Events: []StoredEvent{ev}})
		if errors.Is(err, ErrConflict) {
			mks, rerr := s.Markers(ctx, []MessageRef{refOfEvent(ev)}, true, false)
			mk := mks[refOfEvent(ev)]
			out[i], err = Appended{Dup: &mk}, rerr
		}
		if err != nil {
			out[i].Err = err
		}
	}
	return out, nil
}

// An Append interrupted after the profile's write (some event puts failed, or all of them as in
// a crash): the records whose events were not stored fail and are redelivered; the redelivery
// stores each event once with a new stamp, the allocated stamps are never used, no stamp is
// given twice, and every event is sent with the stamp it is stored with, so a consumer that
// dedupes by stamp counts each event exactly once.
func TestAppendInterruptedAfterProfileWrite(t *testing.T) { eachBackend(t, testAppendInterrupted) }

func testAppendInterrupted(t *testing.T, b backend) {
	e := b.newEnv(t, nil)
	ctx := context.Background()
	failing := map[string]bool{"i3": true, "i5": true, "i6": true}
	broken := NewProcessor(&failingPuts{GraphStore: e.data.another(), fail: func(mid string) bool { return failing[mid] },
		throttled: func(mid string) bool { return mid == "i3" }}, e.proc.rules, Options{SkipLegacyDedupe: true})
	all := []tracking.Record{rec("identify", "i1", 0, f{"uid": "u", "traits": `{"plan":"free"}`})}
	for i := 2; i <= 6; i++ {
		all = append(all, rec("track", fmt.Sprintf("i%d", i), i, f{"uid": "u", "event": "Order Completed"}))
	}
	var emitted, throttled []change.Record
	// i3's put is throttled; then a crash after the profile's write: i5 and i6 are not stored.
	for _, batch := range [][]tracking.Record{all[:1], all[1:4], all[4:]} {
		res, chs, err := broken.Process(ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range res {
			if mid := batch[i].Message.MessageID; (r.Outcome == Failed) != failing[mid] {
				t.Fatalf("%s: %v %v", mid, r.Outcome, r.Err)
			}
		}
		emitted = append(emitted, chs...)
		if batch[0].Message.MessageID == "i2" {
			throttled = chs
		}
	}
	// The throttled put certainly stored nothing: its stamp (3) is void at once.
	if len(throttled) != 1 || fmt.Sprint(throttled[0].Void) != fmt.Sprint([]change.Stamp{{Profile: throttled[0].ProfileID, Seq: 3}}) {
		t.Fatalf("change of the batch with a throttled put: %+v", throttled)
	}
	// Kinesis redelivers the batches (to another Lambda, which remembers nothing).
	redo := NewProcessor(e.data.another(), e.proc.rules, Options{SkipLegacyDedupe: true})
	res, chs, err := redo.Process(ctx, all)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if mid := all[i].Message.MessageID; (r.Outcome == Processed) != failing[mid] || r.Outcome == Failed {
			t.Fatalf("redelivered %s: %v %v", mid, r.Outcome, r.Err)
		}
	}
	emitted = append(emitted, chs...)
	g := snapshot(t, e)
	checkStamps(t, g)
	if len(g.msgs) != len(all) {
		t.Fatalf("%d events stored, want %d", len(g.msgs), len(all))
	}
	p := e.byID(t, "user_id:u")
	// The stamps 3, 5 and 6 were allocated and never used. The redelivery, read without dedupe
	// markers (this Lambda committed none of them), allocated 7–12: i1, i2 and i4 turned out
	// stored (7, 8 and 10 void), i3, i5 and i6 took 9, 11 and 12.
	var void []change.Stamp
	for _, c := range chs {
		void = append(void, c.Void...)
	}
	if got := stampsOf(t, chs); p.Seq != 12 || got["i3"].Seq != 9 || got["i5"].Seq != 11 || got["i6"].Seq != 12 || got["i2"].Seq != 2 ||
		fmt.Sprint(void) != fmt.Sprint([]change.Stamp{{Profile: p.ID, Seq: 7}, {Profile: p.ID, Seq: 8}, {Profile: p.ID, Seq: 10}}) {
		t.Fatalf("counter %d, stamps %v, void %v", p.Seq, got, void)
	}
	// The throttled put was taken off the count at once; the two lost to the crash are counted
	// twice (see README: the event count after a crash).
	if p.EventCount != int64(len(all))+2 {
		t.Fatalf("event count %d, want %d", p.EventCount, len(all)+2)
	}
	checkEmitted(t, e.store, all, emitted)
	if n := distinctCounted(emitted); n != len(all) {
		t.Fatalf("a consumer deduping by stamp counts %d events, want %d", n, len(all))
	}
}

// An event put the store refuses after the profile's write is reported Rejected (dead-lettered
// alone); its stamp is void and it is not counted; the other events of the batch are stored.
func TestRefusedEventPutIsRejectedAlone(t *testing.T) {
	e := memBackend.newEnv(t, nil)
	refused := fmt.Errorf("%w: ValidationException: test", ErrRefused)
	proc := NewProcessor(&failingPuts{GraphStore: e.store, fail: func(mid string) bool { return mid == "x2" },
		throttled: func(mid string) bool { return true }, err: refused}, e.proc.rules, Options{SkipLegacyDedupe: true})
	ctx := context.Background()
	e.process(t, rec("identify", "x1", 0, f{"uid": "u"}))
	res, chs, err := proc.Process(ctx, []tracking.Record{rec("track", "x2", 1, f{"uid": "u", "event": "A"}), rec("track", "x3", 2, f{"uid": "u", "event": "B"})})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Outcome != Rejected || !errors.Is(res[0].Err, ErrRefused) || res[1].Outcome != Processed {
		t.Fatalf("results %+v", res)
	}
	p := e.byID(t, "user_id:u")
	if got := stampsOf(t, chs); len(chs) != 1 || len(got) != 1 || got["x3"].Seq != 3 || fmt.Sprint(chs[0].Void) != fmt.Sprint([]change.Stamp{{Profile: p.ID, Seq: 2}}) {
		t.Fatalf("changes %+v", chs)
	}
	if p.EventCount != 2 {
		t.Fatalf("event count %d, want 2", p.EventCount)
	}
}

// checkEmitted verifies change records against the stored events: every event sent is stored
// and carries the stamp it is stored with, and no void stamp is the stamp of a stored event.
func checkEmitted(t *testing.T, s GraphStore, recs []tracking.Record, chs []change.Record) {
	t.Helper()
	refs := map[string]MessageRef{}
	var all []MessageRef
	for i := range recs {
		r := refOf(&recs[i])
		if _, dup := refs[r.ID]; !dup {
			all = append(all, r)
		}
		refs[r.ID] = r
	}
	mks, err := s.Markers(context.Background(), all, true, false)
	if err != nil {
		t.Fatal(err)
	}
	used := map[change.Stamp]string{}
	for _, r := range all {
		if mk, ok := mks[r]; ok {
			used[change.Stamp{Profile: mk.Profile, Seq: mk.Seq}] = r.ID
		}
	}
	for _, c := range chs {
		for i, ev := range c.Events {
			mk, ok := mks[refs[ev.MessageID]]
			if want := (change.Stamp{Profile: mk.Profile, Seq: mk.Seq}); !ok || c.Stamps[i] != want {
				t.Errorf("event %s sent with stamp %v, stored (%v) with %v", ev.MessageID, c.Stamps[i], ok, want)
			}
		}
		for _, v := range c.Void {
			if mid, ok := used[v]; ok {
				t.Errorf("void stamp %v is the stamp of stored event %s", v, mid)
			}
		}
	}
}

// distinctCounted is how many events a consumer that dedupes by stamp counts.
func distinctCounted(chs []change.Record) int {
	seen := map[change.Stamp]bool{}
	for _, c := range chs {
		for _, s := range c.Stamps {
			seen[s] = true
		}
	}
	return len(seen)
}
