package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/serverless-cdp/cdp/internal/change"
	"github.com/serverless-cdp/cdp/internal/deadletter"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

// sixty is a batch of 60 track events of 60 users (u0…u59) from source src1.
func sixty(prefix string) []any {
	out := make([]any, 0, 60)
	for i := 0; i < 60; i++ {
		out = append(out, rec("track", fmt.Sprintf("%s-m%d", prefix, i), i, f{"uid": fmt.Sprintf("u%d", i), "event": "Viewed"}))
	}
	return out
}

// DynamoDB Local itself refuses an event too large for one item: only that record is Rejected.
func TestProcessRealItemTooLargeIsRejectedAlone(t *testing.T) {
	eachBackend(t, testProcessRealItemTooLargeIsRejectedAlone)
}

func testProcessRealItemTooLargeIsRejectedAlone(t *testing.T, b backend) {
	e := b.newEnv(t, nil)
	var recs []tracking.Record
	for i := 0; i < 10; i++ {
		recs = append(recs, rec("track", fmt.Sprintf("big-%d", i), i, f{"uid": fmt.Sprintf("u%d", i%3), "event": "E"}))
	}
	recs[4].Message.Properties = json.RawMessage(`{"blob":"` + noise(600<<10) + `"}`)
	res, _, err := e.proc.Process(context.Background(), recs)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		want := Processed
		if i == 4 {
			want = Rejected
		}
		if r.Outcome != want {
			t.Fatalf("record %d: %v (%v), want %v", i, r.Outcome, r.Err, want)
		}
	}
	if p := e.byID(t, "user_id:u1"); p.EventCount != 2 {
		t.Fatalf("u1 (shares a profile with the refused record): %d events, want 2", p.EventCount)
	}
}

func withSource(r tracking.Record, src string) tracking.Record {
	r.SourceID = src
	return r
}

// messageId is unique within a source: the same id from two sources is two events; from one
// source, one.
func TestDedupePerSource(t *testing.T) { eachBackend(t, testDedupePerSource) }

func testDedupePerSource(t *testing.T, b backend) {
	e := b.newEnv(t, nil)
	ctx := context.Background()
	a := rec("track", "same-id", 0, f{"uid": "u1", "event": "A"})
	res := e.process(t, withSource(a, "s1"), withSource(a, "s2"), withSource(a, "s1"))
	if res[0].Outcome != Processed || res[1].Outcome != Processed || res[2].Outcome != Duplicate {
		t.Fatalf("first delivery: %+v", res)
	}
	res = e.process(t, withSource(a, "s2"), withSource(a, "s1"))
	if res[0].Outcome != Duplicate || res[1].Outcome != Duplicate {
		t.Fatalf("redelivery: %+v", res)
	}
	p := e.byID(t, "user_id:u1")
	evs, _, err := e.store.Events(ctx, p, Page{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if p.EventCount != 2 || len(evs) != 2 || evs[0].SourceID == evs[1].SourceID {
		t.Fatalf("event count %d, timeline %+v", p.EventCount, evs)
	}
	// A message that creates a profile in each of two sources: two profiles.
	e.process(t, withSource(rec("identify", "new-id", 1, f{"uid": "u2"}), "s1"), withSource(rec("identify", "new-id", 1, f{"uid": "u3"}), "s2"))
	wantShape(t, e, "user_id:u1", "user_id:u2", "user_id:u3")
}

// Markers written before dedupe was per source (MSG#<messageId>) still count for their source.
func TestLegacyDedupeMarkers(t *testing.T) { eachBackend(t, testLegacyDedupeMarkers) }

func testLegacyDedupeMarkers(t *testing.T, b backend) {
	e := b.newEnv(t, nil)
	ctx := context.Background()
	m := rec("track", "old-1", 0, f{"uid": "u1", "event": "A"}).Message
	e.data.putLegacyMarker(t, "old-1", "s1", "use_gone", m)
	r := rec("track", "old-1", 0, f{"uid": "u1", "event": "A"})
	res := e.process(t, withSource(r, "s1"), withSource(r, "s2"))
	if res[0].Outcome != Duplicate || res[1].Outcome != Processed {
		t.Fatalf("with legacy markers: %+v", res)
	}
	rules, _ := Compile(Rules{})
	skip := NewProcessor(e.store, StaticRules{rules}, Options{SkipLegacyDedupe: true})
	res, _, _ = skip.Process(ctx, []tracking.Record{withSource(r, "s1")})
	if res[0].Outcome != Processed {
		t.Fatalf("SkipLegacyDedupe: %+v", res)
	}
}

func bigTrait(key string, n int) string {
	return fmt.Sprintf(`{%q:%q}`, key, strings.Repeat("t", n))
}

// 40 identifies with a 31 KB trait each: the profile keeps what fits in MaxTraitBytes, counts
// every event, and its merge log names each refused trait; change records stay small.
func TestTraitBudget(t *testing.T) { eachBackend(t, testTraitBudget) }

func testTraitBudget(t *testing.T, b backend) {
	e := b.newEnv(t, nil)
	ctx := context.Background()
	for b := 0; b < 4; b++ {
		var recs []tracking.Record
		for i := b * 10; i < b*10+10; i++ {
			recs = append(recs, rec("identify", fmt.Sprintf("big-%02d", i), i, f{"uid": "big", "traits": bigTrait(fmt.Sprintf("k%02d", i), 31<<10)}))
		}
		res, chs, err := e.proc.Process(ctx, recs)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.Outcome != Processed {
				t.Fatalf("%+v", r)
			}
		}
		for _, c := range chs {
			if b, _ := json.Marshal(c); len(b) > 2*MaxTraitBytes+20*(32<<10) {
				t.Fatalf("change record of %d bytes", len(b))
			}
		}
	}
	p := e.byID(t, "user_id:big")
	if c := traitsCost(p.Traits); c > MaxTraitBytes || len(p.Traits) != 2 || p.EventCount != 40 {
		t.Fatalf("traits cost %d (%d traits), %d events", c, len(p.Traits), p.EventCount)
	}
	refused := refusedTraits(t, e, p)
	if len(refused) != 38 || !refused["k02"] || !refused["k39"] || refused["k00"] {
		t.Fatalf("refused keys in the merge log: %v", refused)
	}
	evs, _, _ := e.store.Events(ctx, p, Page{Limit: 100})
	if len(evs) != 40 {
		t.Fatalf("timeline: %d events", len(evs))
	}
}

func refusedTraits(t *testing.T, e *env, p *Profile) map[string]bool {
	t.Helper()
	logs, _, err := e.store.MergeLog(context.Background(), p, Page{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, l := range logs {
		for _, a := range l.Actions {
			if a.Kind == ActionRefused && a.Rule == RuleTraitBudget {
				for _, k := range a.Traits {
					out[k] = true
				}
			}
		}
	}
	return out
}

// Merging two profiles that each hold almost the budget keeps the survivor within it.
func TestTraitBudgetOnMerge(t *testing.T) { eachBackend(t, testTraitBudgetOnMerge) }

func testTraitBudgetOnMerge(t *testing.T, b backend) {
	e := b.newEnv(t, nil)
	e.process(t, rec("identify", "a1", 0, f{"aid": "anon", "traits": `{"a1":"` + strings.Repeat("a", 31<<10) + `","a2":"` + strings.Repeat("a", 31<<10) + `"}`}))
	e.process(t, rec("identify", "b1", 1, f{"uid": "user", "traits": `{"b1":"` + strings.Repeat("b", 31<<10) + `","b2":"` + strings.Repeat("b", 31<<10) + `"}`}))
	e.process(t, rec("identify", "m", 2, f{"uid": "user", "aid": "anon"}))
	wantShape(t, e, "anonymous_id:anon user_id:user")
	p := e.byID(t, "user_id:user")
	if c := traitsCost(p.Traits); c > MaxTraitBytes || len(p.Traits) != 2 {
		t.Fatalf("survivor's traits cost %d (%d traits)", c, len(p.Traits))
	}
	if refused := refusedTraits(t, e, p); len(refused) != 2 {
		t.Fatalf("refused on merge: %v", refused)
	}
}

// Change records carry the full traits only when they changed, the profile is new or merged.
func TestChangeRecordsCarryTraitsOnlyWhenChanged(t *testing.T) {
	eachBackend(t, testChangeRecordsCarryTraitsOnlyWhenChanged)
}

func testChangeRecordsCarryTraitsOnlyWhenChanged(t *testing.T, b backend) {
	e := b.newEnv(t, nil)
	ctx := context.Background()
	steps := []struct {
		r      tracking.Record
		traits bool
	}{
		{rec("identify", "c1", 0, f{"uid": "u", "traits": `{"plan":"pro"}`}), true},  // created
		{rec("track", "c2", 1, f{"uid": "u", "event": "Viewed"}), false},             // no trait change
		{rec("identify", "c3", 2, f{"uid": "u", "traits": `{"plan":"pro"}`}), false}, // same value
		{rec("identify", "c4", 3, f{"uid": "u", "traits": `{"plan":"gold"}`}), true}, // changed
		{rec("identify", "c5", 4, f{"aid": "x", "traits": `{"seen":true}`}), true},   // another profile, created
		{rec("identify", "c6", 5, f{"uid": "u", "aid": "x"}), true},                  // merge
	}
	for i, s := range steps {
		_, chs, err := e.proc.Process(ctx, []tracking.Record{s.r})
		if err != nil || len(chs) != 1 {
			t.Fatalf("step %d: %v %+v", i, err, chs)
		}
		if got := chs[0].Traits != nil; got != s.traits {
			t.Fatalf("step %d (%s): traits present %v, want %v: %+v", i, s.r.Message.MessageID, got, s.traits, chs[0])
		}
	}
}

// No part of a split change record exceeds the limit, whatever the profile holds; void stamps
// travel in the first part, with the profile state.
func TestSplitChangeBoundsEveryPart(t *testing.T) {
	c := change.Record{ProfileID: "use_x", Version: 3, Traits: map[string]json.RawMessage{"t": json.RawMessage(`"` + strings.Repeat("v", 60<<10) + `"`)},
		Identifiers: []change.Identifier{{Type: "user_id", Value: "u"}}, Void: []change.Stamp{{Profile: "use_x", Seq: 7}}}
	for i := 0; i < 100; i++ {
		c.Events = append(c.Events, tracking.Message{MessageID: fmt.Sprint(i), Properties: json.RawMessage(`{"pad":"` + strings.Repeat("x", 30<<10) + `"}`)})
	}
	const limit = 256 << 10
	parts, err := SplitChange(c, limit)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for i, p := range parts {
		var r change.Record
		if err := json.Unmarshal(p, &r); err != nil {
			t.Fatal(err)
		}
		if len(p) > limit || r.Part != i+1 || r.Parts != len(parts) || r.ProfileID != "use_x" || r.Version != 3 || (i == 0) != (r.Traits != nil) ||
			(i == 0) != (len(r.Void) == 1) {
			t.Fatalf("part %d: %d bytes, header %d/%d, traits %v, void %v", i, len(p), r.Part, r.Parts, r.Traits != nil, r.Void)
		}
		seen += len(r.Events)
	}
	if seen != 100 {
		t.Fatalf("%d events in %d parts", seen, len(parts))
	}
	huge := c
	huge.Traits = map[string]json.RawMessage{"t": json.RawMessage(`"` + strings.Repeat("v", limit) + `"`)}
	if _, err := SplitChange(huge, limit); !errors.Is(err, ErrChangeTooLarge) {
		t.Fatalf("state over the limit: %v", err)
	}
	one := change.Record{ProfileID: "use_x", Events: []tracking.Message{{MessageID: "a", Properties: json.RawMessage(`"` + strings.Repeat("x", limit) + `"`)}, {MessageID: "b"}}}
	if _, err := SplitChange(one, limit); !errors.Is(err, ErrChangeTooLarge) {
		t.Fatalf("one event over the limit: %v", err)
	}
}

// recordingDeadLetters keeps entries in memory (payloads of any size).
type recordingDeadLetters struct {
	mu      sync.Mutex
	entries []deadletter.Entry
}

func (d *recordingDeadLetters) Put(_ context.Context, e deadletter.Entry) (deadletter.Entry, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.entries = append(d.entries, e)
	return e, nil
}

// Group traits, all groups together, have the same budget as the profile's traits.
func TestGroupTraitBudget(t *testing.T) {
	p := &Profile{ID: "use_g"}
	var refused []string
	for i := 0; i < 10; i++ {
		m := rec("group", fmt.Sprintf("g%d", i), i, f{"uid": "u", "group": fmt.Sprintf("acct-%d", i), "traits": bigTrait("blob", 20<<10)}).Message
		refused = append(refused, p.ApplyMessage(&m, "src1", t0)...)
	}
	if c := groupsCost(p.Groups); c > MaxTraitBytes || p.EventCount != 10 {
		t.Fatalf("group traits cost %d, %d events", c, p.EventCount)
	}
	if len(refused) != 7 || refused[0] != "groups.acct-3.blob" {
		t.Fatalf("refused %v", refused)
	}
}
