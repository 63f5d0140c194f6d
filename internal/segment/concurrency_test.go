package segment

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/activations"
	"github.com/serverless-cdp/cdp/internal/change"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

// Two handler instances (as two Lambda invocations, each with its own state cache) and Ticks
// write one profile at once, in memory with eventually consistent reads one version behind; the
// optimistic version check must keep every event and exactly one entry.
func TestConcurrentWritersLoseNothing(t *testing.T) {
	e := newEnv(t)
	if ms, ok := e.st.(*MemStore); ok {
		ms.StaleReads(true)
	}
	ctx := context.Background()
	if _, err := e.sv.SaveAudience(ctx, *aud(t, "", "Viewers", `{"event":{"name":"Viewed","within":{"hours":1}}}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sv.SaveTrait(ctx, ComputedTrait{Name: "Views", Kind: KindCount, Event: EventFilter{Name: "Viewed"}}); err != nil {
		t.Fatal(err)
	}
	other := NewHandler(e.st, e.h.pub, Options{Clock: e.clock.Now, DefCacheTTL: time.Nanosecond})
	const perWriter = 8
	var wg sync.WaitGroup
	for w, h := range []*Handler{e.h, other} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				id := fmt.Sprintf("w%d-%d", w, i)
				ee := &env{h: h, seq: w * 1000}
				rec := chg("p1", 1, `{}`, track(id, "Viewed", t0.Add(-time.Duration(i)*time.Minute), `{}`))
				// A record whose profile lost every conflict retry is a batch item failure, which
				// Kinesis delivers again: so does this writer.
				for try := 0; len(ee.send(t, rec).BatchItemFailures) > 0; try++ {
					if try == 20 {
						t.Errorf("record %s still failing after %d deliveries", id, try+1)
						break
					}
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 5 {
			if _, err := e.h.Tick(ctx); err != nil {
				t.Error(err)
			}
		}
	}()
	wg.Wait()
	pv, err := e.sv.Profile(ctx, "p1")
	if err != nil || string(pv.ComputedTraits["views"]) != fmt.Sprint(2*perWriter) {
		t.Fatalf("profile %+v %v", pv, err)
	}
	recs := e.read(2*perWriter+2, 3*time.Second)
	// A racing writer may publish another writer's outbox before that writer does: the same
	// record (same id) can appear twice, which receivers dedupe; a second transition must not.
	ids := map[string]string{}
	for _, r := range recs {
		ids[r.ID] = r.Kind
	}
	entered, events := 0, 0
	for _, k := range ids {
		switch k {
		case activations.KindAudienceEntered, activations.KindAudienceExited:
			entered++
		case activations.KindEvent:
			events++
		}
	}
	if entered != 1 || events != 2*perWriter {
		t.Fatalf("distinct records: %d transitions, %d events; %v", entered, events, ids)
	}
}

// Two handler instances deliver the same stamped records at once, in opposite orders (a shard's
// batch retried by a second invocation): every event counts once.
func TestConcurrentDuplicateDeliveryCountsOnce(t *testing.T) {
	e := newEnv(t)
	saveOrderTraits(t, e)
	other := NewHandler(e.st, e.h.pub, Options{Clock: e.clock.Now, DefCacheTTL: time.Nanosecond, History: e.hist})
	const n = 12
	var recs []change.Record
	for i := range n {
		recs = append(recs, stamped("p1", int64(i+1), []tracking.Message{order(fmt.Sprintf("m%d", i), i+1)}, st("p1", int64(i+1))))
	}
	var wg sync.WaitGroup
	for w, h := range []*Handler{e.h, other} {
		wg.Go(func() {
			ee := &env{h: h, seq: w * 1000}
			for i := range n {
				r := recs[i]
				if w == 1 {
					r = recs[n-1-i]
				}
				ee.send(t, r)
			}
		})
	}
	wg.Wait()
	orders, spend, distinct, _ := e.countsOf(t, "p1", n)
	if orders != fmt.Sprint(n) || spend != fmt.Sprint(n*(n+1)/2) || distinct != n {
		t.Fatalf("orders %s spend %s, %d distinct forwarded: want %d, %d, %d", orders, spend, distinct, n, n*(n+1)/2, n)
	}
}
