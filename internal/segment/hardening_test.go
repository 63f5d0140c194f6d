package segment

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/serverless-cdp/cdp/internal/change"
)

// noise is incompressible text of about n bytes.
func noise(n int) string {
	b := make([]byte, n*3/4)
	rand.Read(b)
	return base64.RawStdEncoding.EncodeToString(b)
}

func (e *env) event(t *testing.T, recs ...change.Record) events.KinesisEvent {
	t.Helper()
	var ev events.KinesisEvent
	for _, r := range recs {
		e.stampAll(&r)
		b, _ := json.Marshal(r)
		e.seq++
		var kr events.KinesisEventRecord
		kr.Kinesis.Data, kr.Kinesis.SequenceNumber, kr.Kinesis.PartitionKey = b, fmt.Sprint(e.seq), r.ProfileID
		ev.Records = append(ev.Records, kr)
	}
	return ev
}

// TestPoisonProfileDeadLetteredAlone: in one batch, a profile whose traits can never fit an item
// and a record whose profile id is too long for a key each go to the dead letters on their own,
// with a reason; the other profiles of the batch are processed and nothing is failed.
func TestPoisonProfileDeadLetteredAlone(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	dl := e.dl
	e.h.opt.DeadLetters = dl
	e.h.opt.MaxStateBytes = 100 << 10 // a small budget, so the record still fits a dead letter
	if _, err := e.sv.SaveTrait(ctx, ComputedTrait{Name: "Orders", Kind: KindCount, Event: EventFilter{Name: "Order Completed"}}); err != nil {
		t.Fatal(err)
	}
	// 200 KB of incompressible traits: the profile's state cannot fit the budget.
	huge := chg("p-huge", 1, `{"blob":"`+noise(200<<10)+`"}`, track("m-huge", "Order Completed", t0, `{}`))
	long := chg(strings.Repeat("p", 3000), 1, `{}`, track("m-long", "Order Completed", t0, `{}`))
	ev := e.event(t, chg("p1", 1, `{}`, track("m1", "Order Completed", t0, `{}`)), huge, long,
		chg("p2", 1, `{}`, track("m2", "Order Completed", t0, `{}`)))
	resp, err := e.h.Handle(ctx, ev)
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("batch: %v %+v", err, resp.BatchItemFailures)
	}
	for _, p := range []string{"p1", "p2"} {
		pv, err := e.sv.Profile(ctx, p)
		if err != nil || string(pv.ComputedTraits["orders"]) != "1" {
			t.Fatalf("%s: %+v %v", p, pv, err)
		}
	}
	got, _, err := dl.List(ctx, Stage, 10, "")
	if err != nil || len(got) != 2 {
		t.Fatalf("dead letters: %d %v, want 2", len(got), err)
	}
	reasons := map[string]string{}
	for _, d := range got {
		reasons[d.Reason] = d.Error
	}
	if !strings.Contains(reasons["unprocessable"], "over the size limit") || !strings.Contains(reasons["decode"], "profile id of 3000 bytes") {
		t.Fatalf("reasons: %v", reasons)
	}
}

// TestLargeEventsKeepStateSmall: events with large properties do not grow the state (no event
// is kept, only the accumulators): all 60 events of 10 KB count, and the state stays small.
func TestLargeEventsKeepStateSmall(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.sv.SaveTrait(ctx, ComputedTrait{Name: "Orders", Kind: KindCount, Event: EventFilter{Name: "Order Completed"}}); err != nil {
		t.Fatal(err)
	}
	for b := range 6 {
		var evs []change.Record
		for i := range 10 {
			id := fmt.Sprintf("m%d-%d", b, i)
			evs = append(evs, chg("p1", int64(b*10+i+1), `{}`, track(id, "Order Completed", t0.Add(time.Duration(b*10+i)*time.Second), `{"note":"`+noise(10<<10)+`"}`)))
		}
		if resp := e.send(t, evs...); len(resp.BatchItemFailures) != 0 {
			t.Fatalf("batch %d failed: %+v", b, resp.BatchItemFailures)
		}
	}
	pv, err := e.sv.Profile(ctx, "p1")
	if err != nil || string(pv.ComputedTraits["orders"]) != "60" {
		t.Fatalf("orders %s %v, want all 60", pv.ComputedTraits["orders"], err)
	}
	l, err := e.st.Load(ctx, "p1", true)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := encodeState(l.State); len(b) > 2<<10 {
		t.Fatalf("state of %d bytes after 600 KB of events, want at most 2 KB", len(b))
	}
}

// TestHandleHonoursDeadline: with the deadline already inside the reserve, the handler starts no
// profile and reports its records as batch item failures; the next invocation processes them.
func TestHandleHonoursDeadline(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.sv.SaveTrait(ctx, ComputedTrait{Name: "Orders", Kind: KindCount, Event: EventFilter{Name: "Order Completed"}}); err != nil {
		t.Fatal(err)
	}
	ev := e.event(t, chg("p1", 1, `{}`, track("m1", "Order Completed", t0, `{}`)), chg("p2", 1, `{}`, track("m2", "Order Completed", t0, `{}`)))
	short, cancel := context.WithTimeout(ctx, time.Second) // the reserve is 3 s
	defer cancel()
	resp, err := e.h.Handle(short, ev)
	if err != nil || len(resp.BatchItemFailures) != 2 {
		t.Fatalf("near the deadline: %v %+v", err, resp.BatchItemFailures)
	}
	if pv, _ := e.sv.Profile(ctx, "p1"); pv != nil && len(pv.ComputedTraits["orders"]) > 0 {
		t.Fatalf("p1 was processed past the budget: %+v", pv)
	}
	if resp, err := e.h.Handle(ctx, ev); err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("next invocation: %v %+v", err, resp.BatchItemFailures)
	}
	if pv, err := e.sv.Profile(ctx, "p1"); err != nil || string(pv.ComputedTraits["orders"]) != "1" {
		t.Fatalf("p1 after: %+v %v", pv, err)
	}
}

// steppingClock is a wall clock that advances a step at every reading.
type steppingClock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

func (c *steppingClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(c.step)
	return c.t
}

// TestBackfillStopsAtDeadlineAndResumes: a Tick whose deadline comes during a backfill stops
// between profiles, saves the job's cursor, and the next Tick continues from there: every
// profile evaluated, each transition once.
func TestBackfillStopsAtDeadlineAndResumes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var recs []change.Record
	for i := range 12 {
		p := fmt.Sprintf("p%02d", i)
		recs = append(recs, chg(p, 1, `{}`, track("m"+p, "Order Completed", t0, `{}`)))
	}
	e.send(t, recs...)
	a, err := e.sv.SaveAudience(ctx, *aud(t, "", "Buyers", `{"event":{"name":"Order Completed","count":{"op":"at_least","n":1}}}`))
	if err != nil || a.Status != StatusComputing {
		t.Fatalf("save audience %+v %v", a, err)
	}
	// The wall clock advances 1 s per reading; the deadline (less the 3 s reserve) allows 16.
	deadline := time.Now().Add(time.Hour)
	wall := &steppingClock{t: deadline.Add(-3*time.Second - 16*time.Second), step: time.Second}
	e.h.opt.WallClock = wall.Now
	short, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	if _, err := e.h.Tick(short); err != nil {
		t.Fatal(err)
	}
	v, _ := e.sv.Audience(ctx, a.ID)
	first := v.Backfill.Processed
	t.Logf("first Tick: backfill processed %d of 12 before its deadline (cursor shard %d)", first, v.Backfill.Shard)
	if v.Status != StatusComputing || first == 0 || first >= 12 {
		t.Fatalf("after the short Tick: status %s, processed %d (want some, not all)", v.Status, first)
	}
	e.h.opt.WallClock = time.Now
	if _, err := e.h.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	v, _ = e.sv.Audience(ctx, a.ID)
	if v.Status != StatusLive || v.Size != 12 || v.Backfill.Processed != 12 {
		t.Fatalf("after resuming: status %s size %d processed %d", v.Status, v.Size, v.Backfill.Processed)
	}
}

// TestTickHonoursDeadline: a Tick whose deadline is already inside the reserve re-evaluates no
// profile; the due profile stays scheduled and the next Tick makes its exit, once.
func TestTickHonoursDeadline(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a, err := e.sv.SaveAudience(ctx, *aud(t, "", "Recent buyers", `{"event":{"name":"Order Completed","within":{"hours":1}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.h.RunBackfills(ctx); err != nil {
		t.Fatal(err)
	}
	e.send(t, chg("p1", 1, `{}`, track("m1", "Order Completed", t0.Add(-time.Minute), `{}`)))
	e.clock.Add(2 * time.Hour)
	short, cancel := context.WithTimeout(ctx, time.Second) // the reserve is 3 s
	defer cancel()
	if res, err := e.h.Tick(short); err != nil || res.Due != 0 {
		t.Fatalf("tick near its deadline: %+v %v", res, err)
	}
	if ms, _, _ := e.sv.Members(ctx, a.ID, 10, ""); len(ms) != 1 {
		t.Fatalf("members after the short tick: %v", ms)
	}
	if res, err := e.h.Tick(ctx); err != nil || res.Due != 1 {
		t.Fatalf("next tick: %+v %v", res, err)
	}
	if ms, _, _ := e.sv.Members(ctx, a.ID, 10, ""); len(ms) != 0 {
		t.Fatalf("members after the next tick: %v", ms)
	}
}
