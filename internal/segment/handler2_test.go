package segment

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/activations"
	"github.com/serverless-cdp/cdp/internal/change"
	"github.com/serverless-cdp/cdp/internal/stream"
)

func TestMergeMovesStateToSurvivor(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	twice, err := e.sv.SaveAudience(ctx, *aud(t, "", "Two orders", `{"event":{"name":"Order Completed","count":{"op":"at_least","n":2}}}`))
	if err != nil {
		t.Fatal(err)
	}
	one, err := e.sv.SaveAudience(ctx, *aud(t, "", "Ordered", `{"event":{"name":"Order Completed"}}`))
	if err != nil {
		t.Fatal(err)
	}
	e.send(t,
		chg("a", 1, `{}`, track("m1", "Order Completed", t0, `{}`)),
		chg("b", 1, `{}`, track("m2", "Order Completed", t0, `{}`)))
	// b is merged into a: a has two orders now; b's membership moves to a without an exit.
	merge := chg("a", 2, `{}`)
	merge.MergedFrom = []string{"b"}
	for range 2 {
		e.send(t, merge)
	}
	recs := e.read(7, 3*time.Second)
	eq(t, "transitions", summary(recs, activations.KindAudienceEntered, activations.KindAudienceExited), []string{
		"audience_entered a ordered", "audience_entered a two_orders", "audience_entered b ordered"})
	for _, id := range []string{twice.ID, one.ID} {
		ms, _, err := e.sv.Members(ctx, id, 10, "")
		if err != nil || len(ms) != 1 || ms[0].ProfileID != "a" {
			t.Fatalf("members of %s: %v %v", id, ms, err)
		}
	}
	pv, err := e.sv.Profile(ctx, "b")
	if err != nil || pv.MergedInto != "a" || len(pv.Audiences) != 2 {
		t.Fatalf("merged profile view %+v %v", pv, err)
	}
}

func TestBackfillAndPreviewOfAudienceCreatedAfterItsEvents(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var recs []change.Record
	for i, p := range []string{"p1", "p2", "p3", "p4", "p5"} {
		var evs = track("m"+p, "Order Completed", t0.Add(-time.Duration(i)*day), `{"revenue":`+string(rune('1'+i))+`0}`)
		recs = append(recs, chg(p, 1, `{"plan":"pro"}`, evs))
	}
	e.send(t, recs...)
	// revenue 10,20,30,40,50 at 0..4 days ago.
	draft := aud(t, "", "Big spenders", `{"and":[{"computedTrait":{"key":"ltv","op":"gte","value":30}},{"trait":{"key":"plan","op":"eq","value":"pro"}}]}`)
	if _, err := e.sv.Preview(ctx, *draft, 0); err == nil {
		t.Fatal("preview with an unknown computed trait should fail")
	}
	ltv, err := e.sv.SaveTrait(ctx, ComputedTrait{Name: "LTV", Kind: KindLifetimeValue})
	if err != nil || ltv.Status != StatusComputing {
		t.Fatalf("save trait %+v %v", ltv, err)
	}
	a, err := e.sv.SaveAudience(ctx, *draft)
	if err != nil || a.Status != StatusComputing {
		t.Fatalf("save audience %+v %v", a, err)
	}
	// Tick runs backfill slices; the job is resumable, so a tiny budget still finishes.
	e.h.opt.BackfillBudget = time.Nanosecond
	for i := 0; ; i++ {
		if _, err := e.h.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		v, _ := e.sv.Audience(ctx, a.ID)
		if v.Status == StatusLive {
			if v.Size != 3 || v.Backfill.Processed != 5 {
				t.Fatalf("after backfill %+v %+v", v, v.Backfill)
			}
			break
		}
		if i > 40 {
			t.Fatalf("backfill not finishing: %+v", v.Backfill)
		}
	}
	got := e.read(100, 2*time.Second)
	eq(t, "entered", summary(got, activations.KindAudienceEntered), []string{
		"audience_entered p3 big_spenders", "audience_entered p4 big_spenders", "audience_entered p5 big_spenders"})
	pr, err := e.sv.Preview(ctx, *aud(t, "", "Draft", `{"computedTrait":{"key":"ltv","op":"gt","value":35}}`), 0)
	if err != nil || pr.Matched != 2 || pr.Scanned != 5 || !pr.Complete {
		t.Fatalf("preview %+v %v", pr, err)
	}
	pr, _ = e.sv.Preview(ctx, *aud(t, "", "Draft", `{"audience":{"id":"`+a.ID+`"}}`), 2)
	if pr.Complete || pr.Scanned != 2 {
		t.Fatalf("limited preview %+v", pr)
	}
	var ve *ValidationError
	if _, err := e.sv.SaveAudience(ctx, Audience{Name: "Bad", Condition: Condition{Trait: &Predicate{Key: "x", Op: "gt"}}}); !errors.As(err, &ve) {
		t.Fatalf("bad definition: %v", err)
	}
	if err := e.sv.DeleteTrait(ctx, ltv.ID); !errors.As(err, &ve) {
		t.Fatalf("deleting a trait in use: %v", err)
	}
}

// flaky fails every Put while down is set.
type flaky struct {
	pub  Publisher
	down bool
}

func (f *flaky) Put(ctx context.Context, recs []stream.Record) error {
	if f.down {
		return errors.New("kinesis unavailable")
	}
	return f.pub.Put(ctx, recs)
}

func TestTransitionsSurvivePublishFailure(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.sv.SaveAudience(ctx, *aud(t, "", "Ordered", `{"event":{"name":"Order Completed"}}`)); err != nil {
		t.Fatal(err)
	}
	f := &flaky{pub: e.h.pub}
	e.h.pub = f
	rec := chg("p1", 1, `{}`, track("m1", "Order Completed", t0, `{}`))
	// The state write succeeds but publishing the transition fails: the outbox keeps it.
	e.h.pub = &afterFirst{inner: f}
	if resp := e.send(t, rec); len(resp.BatchItemFailures) != 1 {
		t.Fatalf("want a reported failure, got %v", resp.BatchItemFailures)
	}
	e.h.pub = f
	if resp := e.send(t, rec); len(resp.BatchItemFailures) != 0 {
		t.Fatalf("retry failed: %v", resp.BatchItemFailures)
	}
	e.send(t, rec)
	got := e.read(3, 2*time.Second)
	eq(t, "after retry", summary(got, activations.KindAudienceEntered, activations.KindEvent), []string{
		"audience_entered p1 ordered", "event p1 evt-p1-1"})
}

// afterFirst lets the first Put through (the forwarded events) and fails the next ones.
type afterFirst struct {
	inner Publisher
	n     int
}

func (a *afterFirst) Put(ctx context.Context, recs []stream.Record) error {
	a.n++
	if a.n > 1 {
		return errors.New("kinesis unavailable")
	}
	return a.inner.Put(ctx, recs)
}
