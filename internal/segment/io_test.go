package segment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/activations"
	"github.com/serverless-cdp/cdp/internal/stream"
)

// The outbox lives in the state item: when the commit succeeds but publishing its transition
// fails and the process dies, another process (an empty cache, as a new Lambda container)
// publishes it when it next loads the profile, before the new change; its commit clears the
// outbox, so a third process does not publish it again.
func TestOutboxPublishedByTheNextProcessAfterACrash(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.sv.SaveAudience(ctx, *aud(t, "", "Ordered", `{"event":{"name":"Order Completed"}}`)); err != nil {
		t.Fatal(err)
	}
	pub := e.h.pub
	e.h.pub = &afterFirst{inner: pub} // the event is forwarded, the transition is not
	if resp := e.send(t, chg("p1", 1, `{}`, track("m1", "Order Completed", t0, `{}`))); len(resp.BatchItemFailures) != 1 {
		t.Fatalf("want the record failed, got %v", resp.BatchItemFailures)
	}
	if got := summary(e.read(1, time.Second), activations.KindAudienceEntered); len(got) != 0 {
		t.Fatalf("published although the stream failed: %v", got)
	}
	for i, id := range []string{"m2", "m3"} { // two more processes, one change each
		e.h = NewHandler(e.st, pub, Options{Clock: e.clock.Now, DefCacheTTL: time.Nanosecond})
		if resp := e.send(t, chg("p1", int64(2+i), `{}`, track(id, "Page Viewed", t0, `{}`))); len(resp.BatchItemFailures) != 0 {
			t.Fatalf("change %s: %v", id, resp.BatchItemFailures)
		}
	}
	got := e.read(4, 3*time.Second)
	eq(t, "published", summary(got, activations.KindAudienceEntered, activations.KindEvent), []string{
		"audience_entered p1 ordered", "event p1 evt-p1-1", "event p1 evt-p1-2", "event p1 evt-p1-3"})
	if got[1].Kind != activations.KindAudienceEntered || got[2].ID != "evt-p1-2" {
		t.Fatalf("the transition left behind is published first: %v", summary(got[1:3], activations.KindAudienceEntered, activations.KindEvent))
	}
}

// A process that failed to publish an outbox reads that profile consistently next time, so
// even a change that brings nothing (no traits, no event), on a store whose eventual reads lag,
// publishes the transition left behind.
func TestOutboxLeftBehindSeenDespiteStaleReads(t *testing.T) {
	e := newEnv(t)
	ms, ok := e.st.(*MemStore)
	if !ok {
		t.Skip("stale reads are simulated by the in-memory store")
	}
	ctx := context.Background()
	if _, err := e.sv.SaveAudience(ctx, *aud(t, "", "Ordered", `{"event":{"name":"Order Completed"}}`)); err != nil {
		t.Fatal(err)
	}
	e.send(t, chg("p1", 1, `{}`, track("m0", "Page Viewed", t0, `{}`)))
	ms.StaleReads(true)
	pub := e.h.pub
	e.h.pub = &afterFirst{inner: pub}
	if resp := e.send(t, chg("p1", 2, ``, track("m1", "Order Completed", t0, `{}`))); len(resp.BatchItemFailures) != 1 {
		t.Fatalf("want the record failed, got %v", resp.BatchItemFailures)
	}
	e.h.pub = pub
	e.send(t, chg("p1", 3, ``))
	eq(t, "published", summary(e.read(3, 2*time.Second), activations.KindAudienceEntered), []string{"audience_entered p1 ordered"})
}

// One process publishes a transition once, however often it sees the profile again
// (redeliveries, later changes): it remembers what it published, the store does not.
func TestOutboxNotRepublishedByItsPublisher(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.sv.SaveAudience(ctx, *aud(t, "", "Ordered", `{"event":{"name":"Order Completed"}}`)); err != nil {
		t.Fatal(err)
	}
	first := chg("p1", 1, `{}`, track("m1", "Order Completed", t0, `{}`))
	e.send(t, first)
	e.send(t, first) // a redelivery: re-read consistently, written nothing
	e.send(t, chg("p1", 2, `{"plan":"pro"}`))
	got := e.read(3, 2*time.Second)
	eq(t, "published", summary(got, activations.KindAudienceEntered, activations.KindEvent), []string{
		"audience_entered p1 ordered", "event p1 evt-p1-1"})
}

// Reads may be stale (the cache of another process, DynamoDB's eventually consistent reads):
// two processes alternate on one profile with every eventual read one version behind. Nothing
// is lost, and a change the stale state would take for a redelivery (traits back to what it
// holds) is still applied.
func TestStaleReadsLoseNothing(t *testing.T) {
	e := newEnv(t)
	ms, ok := e.st.(*MemStore)
	if !ok {
		t.Skip("stale reads are simulated by the in-memory store")
	}
	ctx := context.Background()
	if _, err := e.sv.SaveTrait(ctx, ComputedTrait{Name: "Views", Kind: KindCount, Event: EventFilter{Name: "Viewed"}}); err != nil {
		t.Fatal(err)
	}
	pro, err := e.sv.SaveAudience(ctx, *aud(t, "", "Pro", `{"trait":{"key":"plan","op":"eq","value":"pro"}}`))
	if err != nil {
		t.Fatal(err)
	}
	ms.StaleReads(true)
	hs := []*Handler{e.h, NewHandler(e.st, e.h.pub, Options{Clock: e.clock.Now, DefCacheTTL: time.Nanosecond})}
	plans := []string{"free", "pro", "free", "pro", "free"}
	for i, plan := range plans {
		ee := &env{h: hs[i%2], seq: 100 * i}
		ee.send(t, chg("p1", int64(i+1), fmt.Sprintf(`{"plan":%q}`, plan), track(fmt.Sprint("v", i), "Viewed", t0, `{}`)))
	}
	// Back to "pro", with no event, at the second process: its cache holds exactly these traits
	// (its last commit), although the stored state has moved on to "free".
	(&env{h: hs[1], seq: 1000}).send(t, chg("p1", 6, `{"plan":"pro"}`))
	pv, err := e.sv.Profile(ctx, "p1")
	if err != nil {
		t.Fatal(err)
	}
	if string(pv.ComputedTraits["views"]) != fmt.Sprint(len(plans)) || len(pv.Audiences) != 1 || pv.Audiences[0].ID != pro.ID {
		t.Fatalf("profile after stale reads: %+v", pv)
	}
}

func TestStateCacheBoundAndOrder(t *testing.T) {
	data := make([]byte, 1000)
	per := len(data) + len("p0") + cacheEntryOverhead
	c := newStateCache(3 * per)
	for i := range 3 {
		c.put(fmt.Sprint("p", i), 1, data, false)
	}
	if _, ok, _ := c.get("p0"); !ok { // p0 is now the most recently used
		t.Fatal("p0 not cached")
	}
	c.put("p3", 1, data, false) // evicts p1, the least recently used
	if _, ok, _ := c.get("p1"); ok {
		t.Fatal("the least recently used entry was kept")
	}
	for _, pid := range []string{"p0", "p2", "p3"} {
		if _, ok, _ := c.get(pid); !ok {
			t.Fatalf("%s evicted", pid)
		}
	}
	if c.bytes() > 3*per {
		t.Fatalf("cache of %d bytes over its bound of %d", c.bytes(), 3*per)
	}
	c.put("big", 1, make([]byte, 4*per), false) // larger than the whole cache: not kept
	if _, ok, _ := c.get("big"); ok || c.bytes() > 3*per {
		t.Fatalf("an entry over the bound was kept (%d bytes)", c.bytes())
	}
	c.put("p0", 2, data, true)
	if _, ok, pending := c.get("p0"); ok || !pending || c.publishedAt("p0", 2) {
		t.Fatal("an entry with an unpublished outbox was served")
	}
	c.published("p0", 1) // an older version: no effect
	if c.publishedAt("p0", 2) {
		t.Fatal("published at the wrong version")
	}
	c.published("p0", 2)
	if e, ok, _ := c.get("p0"); !ok || e.ver != 2 || !c.publishedAt("p0", 2) {
		t.Fatalf("after publishing: %+v %v", e, ok)
	}
	d := newStateCache(-1)
	d.put("p", 1, data, false)
	if d.bytes() != 0 {
		t.Fatal("a disabled cache keeps entries")
	}
}

// gatedPublisher records each Put; the first one waits for the gate.
type gatedPublisher struct {
	gate  chan struct{}
	mu    sync.Mutex
	calls [][]string // partition keys per call
	fail  error
}

func (g *gatedPublisher) Put(_ context.Context, recs []stream.Record) error {
	g.mu.Lock()
	first := len(g.calls) == 0
	var keys []string
	for _, r := range recs {
		keys = append(keys, r.PartitionKey)
	}
	g.calls = append(g.calls, keys)
	g.mu.Unlock()
	if first {
		<-g.gate
	}
	return g.fail
}

// Concurrent puts while one is in flight go out together in the next call, in order per caller;
// every caller gets the outcome of the call that carried its records.
func TestGroupPublisherMergesConcurrentPuts(t *testing.T) {
	for _, fail := range []error{nil, errors.New("stream down")} {
		gp := &gatedPublisher{gate: make(chan struct{}), fail: fail}
		g := &groupPublisher{pub: gp}
		errs := make(chan error, 6)
		put := func(pid string) {
			errs <- g.Put(context.Background(), []stream.Record{{PartitionKey: pid}, {PartitionKey: pid}})
		}
		go put("a") // in flight until the gate opens
		waitFor(t, func() bool { gp.mu.Lock(); defer gp.mu.Unlock(); return len(gp.calls) == 1 })
		for _, pid := range []string{"b", "c", "d", "e", "f"} {
			go put(pid)
		}
		waitFor(t, func() bool { g.mu.Lock(); defer g.mu.Unlock(); return len(g.queue) == 5 })
		close(gp.gate)
		for range 6 {
			if err := <-errs; !errors.Is(err, fail) {
				t.Fatalf("put: %v, want %v", err, fail)
			}
		}
		if len(gp.calls) != 2 || len(gp.calls[1]) != 10 {
			t.Fatalf("calls %v: want the five queued puts in one call", gp.calls)
		}
		for _, pid := range []string{"b", "c", "d", "e", "f"} {
			i := slices.Index(gp.calls[1], pid)
			if i < 0 || gp.calls[1][i+1] != pid {
				t.Fatalf("records of %s not together in order: %v", pid, gp.calls[1])
			}
		}
		if g.busy || len(g.queue) != 0 {
			t.Fatal("publisher left busy")
		}
	}
}

// waitFor polls cond until it holds, failing the test after 5 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

// BenchmarkStateCodec encodes and decodes a small state (as a change does on commit and on a
// cache hit): pooled gzip writers and readers, not a megabyte of compressor state each time.
func BenchmarkStateCodec(b *testing.B) {
	st := NewState("p")
	st.Email = "a@example.com"
	for i := range 5 {
		st.Computed[fmt.Sprint("trait_", i)] = json.RawMessage(`12.5`)
		st.Members[fmt.Sprint("aud", i)] = &Membership{In: true, Seq: 1}
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		data, err := encodeState(st)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := decodeState(data, 1); err != nil {
			b.Fatal(err)
		}
	}
}
