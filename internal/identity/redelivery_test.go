package identity

import (
	"context"
	"errors"
	"sort"
	"testing"

	"github.com/serverless-cdp/cdp/internal/deadletter"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

type failingDeadLetters struct{ calls int }

func (d *failingDeadLetters) Put(context.Context, deadletter.Entry) (deadletter.Entry, error) {
	d.calls++
	return deadletter.Entry{}, errors.New("dynamodb down")
}

// A redelivered message goes to the survivor of the profile it was stored with, and a batch
// mixing redelivered and fresh messages still yields one record per profile.
func TestRedeliveryFollowsMergesAndCoalesces(t *testing.T) {
	eachBackend(t, testRedeliveryFollowsMergesAndCoalesces)
}

func testRedeliveryFollowsMergesAndCoalesces(t *testing.T, b backend) {
	e := b.newEnv(t, nil)
	ctx := context.Background()
	first := []tracking.Record{
		rec("track", "d1", 0, f{"aid": "x", "event": "A"}),
		rec("identify", "d2", 1, f{"uid": "u", "traits": `{"tier":"gold"}`}),
	}
	e.process(t, first...)
	// x is merged into u (two profiles become one).
	e.process(t, rec("identify", "d3", 2, f{"uid": "u", "aid": "x"}))
	wantShape(t, e, "anonymous_id:x user_id:u")
	surv := e.byID(t, "user_id:u")

	// Redeliver the first batch with a fresh event for the same profile.
	batch := append(append([]tracking.Record{}, first...), rec("track", "d4", 3, f{"uid": "u", "event": "B"}))
	res, chs, err := e.proc.Process(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Outcome != Duplicate || res[1].Outcome != Duplicate || res[2].Outcome != Processed ||
		res[0].ProfileID != surv.ID || res[1].ProfileID != surv.ID {
		t.Fatalf("results %+v", res)
	}
	if len(chs) != 1 {
		t.Fatalf("changes: %d records, want 1: %+v", len(chs), chs)
	}
	ch := chs[0]
	var mids []string
	for _, ev := range ch.Events {
		mids = append(mids, ev.MessageID)
	}
	sort.Strings(mids)
	if ch.ProfileID != surv.ID || ch.Version != surv.Version+1 || ch.Created || len(ch.MergedFrom) != 0 ||
		len(mids) != 3 || mids[0] != "d1" || mids[1] != "d2" || mids[2] != "d4" || string(ch.Traits["tier"]) != `"gold"` {
		t.Fatalf("change %+v events %v", ch, mids)
	}
	if p := e.byID(t, "user_id:u"); p.EventCount != 4 {
		t.Fatalf("event count %d, want 4", p.EventCount)
	}
}
