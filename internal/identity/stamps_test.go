package identity

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/serverless-cdp/cdp/internal/change"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

// stampsOf maps each event of the change records to its stamp (and fails if Stamps is not
// parallel to Events).
func stampsOf(t *testing.T, chs []change.Record) map[string]change.Stamp {
	t.Helper()
	out := map[string]change.Stamp{}
	for _, c := range chs {
		if len(c.Stamps) != len(c.Events) {
			t.Fatalf("change of %s: %d events, %d stamps", c.ProfileID, len(c.Events), len(c.Stamps))
		}
		for i, ev := range c.Events {
			out[ev.MessageID] = c.Stamps[i]
		}
	}
	return out
}

// Every committed event takes the next number of its survivor's sequence; events committed
// before a merge keep the stamp of the profile they went to, and a redelivery re-emits each
// event with its original stamp.
func TestStampsDenseAndReemittedUnchanged(t *testing.T) { eachBackend(t, testStampsDenseAndReemitted) }

func testStampsDenseAndReemitted(t *testing.T, b backend) {
	e := b.newEnv(t, nil)
	ctx := context.Background()
	first := []tracking.Record{
		rec("track", "s1", 0, f{"aid": "x", "event": "A"}),
		rec("track", "s2", 1, f{"aid": "x", "event": "B"}),
		rec("identify", "s3", 2, f{"uid": "u", "traits": `{"tier":"gold"}`}),
	}
	_, chs, err := e.proc.Process(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	got := stampsOf(t, chs)
	x, u := got["s1"].Profile, got["s3"].Profile
	want := map[string]change.Stamp{"s1": {Profile: x, Seq: 1}, "s2": {Profile: x, Seq: 2}, "s3": {Profile: u, Seq: 1}}
	if x == u || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("stamps %v, want %v", got, want)
	}
	// x merges into u (or u into x): the survivor counts on from its own sequence.
	_, chs, err = e.proc.Process(ctx, []tracking.Record{rec("identify", "s4", 3, f{"uid": "u", "aid": "x"}), rec("track", "s5", 4, f{"uid": "u", "event": "C"})})
	if err != nil {
		t.Fatal(err)
	}
	surv := e.byID(t, "user_id:u")
	got = stampsOf(t, chs)
	base := map[string]int64{x: 2, u: 1}[surv.ID]
	if got["s4"] != (change.Stamp{Profile: surv.ID, Seq: base + 1}) || got["s5"] != (change.Stamp{Profile: surv.ID, Seq: base + 2}) || surv.Seq != base+2 {
		t.Fatalf("after the merge: stamps %v, survivor %s at %d", got, surv.ID, surv.Seq)
	}
	// Redeliver everything: nothing is committed, each event comes back with its first stamp.
	res, chs, err := e.proc.Process(ctx, append(first, rec("identify", "s4", 3, f{"uid": "u", "aid": "x"})))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Outcome != Duplicate {
			t.Fatalf("record %d: %v", i, r.Outcome)
		}
	}
	re := stampsOf(t, chs)
	for _, mid := range []string{"s1", "s2", "s3"} {
		if re[mid] != want[mid] {
			t.Errorf("re-emitted %s with %v, want its original %v", mid, re[mid], want[mid])
		}
	}
	if re["s4"] != (change.Stamp{Profile: surv.ID, Seq: base + 1}) {
		t.Errorf("re-emitted s4 with %v", re["s4"])
	}
	if p := e.byID(t, "user_id:u"); p.Seq != base+2 || p.EventCount != 5 {
		t.Fatalf("after the redelivery: counter %d, %d events", p.Seq, p.EventCount)
	}
}

// A split change record keeps every stamp with its event.
func TestSplitChangeKeepsStampsAligned(t *testing.T) {
	c := change.Record{ProfileID: "use_x", Version: 3, Traits: map[string]json.RawMessage{"t": json.RawMessage(`"` + strings.Repeat("v", 60<<10) + `"`)}}
	for i := 0; i < 100; i++ {
		c.Events = append(c.Events, tracking.Message{MessageID: fmt.Sprint(i), Properties: json.RawMessage(`{"pad":"` + strings.Repeat("x", 10<<10+i*97) + `"}`)})
		c.Stamps = append(c.Stamps, change.Stamp{Profile: "use_p" + fmt.Sprint(i%3), Seq: int64(1000 + i)})
	}
	const limit = 128 << 10
	parts, err := SplitChange(c, limit)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) < 3 {
		t.Fatalf("%d parts", len(parts))
	}
	seen := 0
	for i, p := range parts {
		var r change.Record
		if err := json.Unmarshal(p, &r); err != nil {
			t.Fatal(err)
		}
		if len(p) > limit || len(r.Stamps) != len(r.Events) {
			t.Fatalf("part %d: %d bytes, %d events, %d stamps", i, len(p), len(r.Events), len(r.Stamps))
		}
		for k, ev := range r.Events {
			n := 0
			fmt.Sscan(ev.MessageID, &n)
			if r.Stamps[k] != c.Stamps[n] {
				t.Fatalf("part %d: event %s has stamp %v, want %v", i, ev.MessageID, r.Stamps[k], c.Stamps[n])
			}
			seen++
		}
	}
	if seen != 100 {
		t.Fatalf("%d events in %d parts", seen, len(parts))
	}
}
