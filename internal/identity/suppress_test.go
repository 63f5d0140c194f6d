package identity

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/serverless-cdp/cdp/internal/blocklist"
	"github.com/serverless-cdp/cdp/internal/deadletter"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

// callCounter counts every call to the store's ports.
type callCounter struct {
	storeUnderTest
	calls atomic.Int64
}

func (c *callCounter) Markers(ctx context.Context, refs []MessageRef, consistent, legacy bool) (map[MessageRef]Marker, error) {
	c.calls.Add(1)
	return c.storeUnderTest.Markers(ctx, refs, consistent, legacy)
}

func (c *callCounter) Index(ctx context.Context, ids []Identifier, consistent bool) (map[Identifier]string, error) {
	c.calls.Add(1)
	return c.storeUnderTest.Index(ctx, ids, consistent)
}

func (c *callCounter) Profiles(ctx context.Context, ids []string, consistent bool) (map[string]*Profile, error) {
	c.calls.Add(1)
	return c.storeUnderTest.Profiles(ctx, ids, consistent)
}

func (c *callCounter) Commit(ctx context.Context, cm *Commit) error {
	c.calls.Add(1)
	return c.storeUnderTest.Commit(ctx, cm)
}

func (c *callCounter) Append(ctx context.Context, cm *Commit) ([]Appended, error) {
	c.calls.Add(1)
	return c.storeUnderTest.Append(ctx, cm)
}

func (c *callCounter) Attempts(ctx context.Context, src, id string) (int, error) {
	c.calls.Add(1)
	return c.storeUnderTest.Attempts(ctx, src, id)
}

func (c *callCounter) CountAttempt(ctx context.Context, src, id string) (int, error) {
	c.calls.Add(1)
	return c.storeUnderTest.CountAttempt(ctx, src, id)
}

// suppressEnv is a handler with a suppression list (blocklist's checker on its in-memory
// store, on an injected clock) over one backend's store.
type suppressEnv struct {
	*env
	calls *callCounter
	list  *blocklist.MemStore
	clk   *testClock
	h     *Handler
	dl    *recordingDeadLetters
	pub   *memPublisher
}

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newSuppressEnv(t *testing.T, b backend, sup Suppressions) *suppressEnv {
	t.Helper()
	e := b.newEnv(t, nil)
	se := &suppressEnv{env: e, calls: &callCounter{storeUnderTest: e.store}, clk: &testClock{t: t0}, dl: &recordingDeadLetters{}, pub: &memPublisher{}}
	h := blocklist.NewHasher([]byte("0123456789abcdef"))
	se.list = blocklist.NewMemStore(h, blocklist.Options{Now: se.clk.Now})
	if sup == nil {
		sup = blocklist.NewChecker(se.list, h, blocklist.CheckerOptions{Now: se.clk.Now})
	}
	rules, _ := Compile(Rules{})
	se.h = NewHandler(HandlerConfig{Processor: NewProcessor(se.calls, StaticRules{rules}, Options{}), Store: se.calls,
		Changes: se.pub, DeadLetters: se.dl, Suppressions: sup})
	return se
}

func (se *suppressEnv) handle(t *testing.T, recs ...any) events.KinesisEventResponse {
	t.Helper()
	resp, err := se.h.Handle(context.Background(), kinesisEvent(t, recs...))
	if err != nil {
		t.Fatalf("handle: %v", err)
	}
	return resp
}

func (se *suppressEnv) dropped(t *testing.T) int64 {
	t.Helper()
	d, err := se.list.DroppedBySource(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return d["src1"]
}

// suppressedEvents each carry exactly one of ann's identifiers (by every field that yields one).
func suppressedEvents(prefix string) []any {
	return []any{
		rec("track", prefix+"-uid", 10, f{"uid": "u1", "event": "E"}),
		rec("page", prefix+"-aid", 11, f{"aid": "a1"}),
		rec("identify", prefix+"-email", 12, f{"uid": "u9", "traits": `{"email":"ANN@example.com"}`}),
		rec("track", prefix+"-ctxemail", 13, f{"aid": "a9", "event": "E", "ctx": `{"traits":{"email":"ann@example.com"}}`}),
		rec("track", prefix+"-device", 14, f{"aid": "a8", "event": "E", "ctx": `{"device":{"id":"dev-1"}}`}),
		rec("alias", prefix+"-alias", 15, f{"uid": "u7", "prev": "a1"}),
	}
}

var suppressedAnnIDs = []string{"user_id:u1", "anonymous_id:a1", "email:ann@example.com", "device_id:dev-1"}

func TestSuppressionDropsEveryRecordOfThePerson(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		se := newSuppressEnv(t, b, nil)
		se.handle(t, rec("identify", "m1", 0, f{"uid": "u1", "aid": "a1", "traits": `{"email":"ann@example.com"}`}))
		before := se.data.snapshot(t)
		if err := se.list.Suppress(ctx, "req1", suppressedAnnIDs, suppressedAnnIDs); err != nil {
			t.Fatal(err)
		}
		se.clk.Add(time.Second) // the checker's interval
		calls, pubs := se.calls.calls.Load(), len(se.pub.recs)
		sup := suppressedEvents("s")
		if resp := se.handle(t, sup...); len(resp.BatchItemFailures) != 0 {
			t.Fatalf("suppressed records must be acknowledged: %+v", resp.BatchItemFailures)
		}
		if n := se.calls.calls.Load() - calls; n != 0 {
			t.Fatalf("%d store calls for a batch of suppressed records, want 0", n)
		}
		after := se.data.snapshot(t)
		if len(after.msgs) != len(before.msgs) || len(after.index) != len(before.index) || len(after.live) != len(before.live) {
			t.Fatalf("suppressed records stored something: events %d→%d, index %d→%d, profiles %d→%d",
				len(before.msgs), len(after.msgs), len(before.index), len(after.index), len(before.live), len(after.live))
		}
		if len(se.dl.entries) != 0 || len(se.pub.recs) != pubs {
			t.Fatalf("dead letters %d, changes published %d", len(se.dl.entries), len(se.pub.recs)-pubs)
		}
		if got := se.dropped(t); got != int64(len(sup)) {
			t.Fatalf("dropped count %d, want %d", got, len(sup))
		}
		// Redelivered, they are counted again (they were never stored to be recognised).
		se.handle(t, sup[0])
		if got := se.dropped(t); got != int64(len(sup))+1 {
			t.Fatalf("dropped count after a redelivery %d", got)
		}
	})
}

func TestSuppressionMixedBatchStoresTheOthers(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		se := newSuppressEnv(t, b, nil)
		if err := se.list.Suppress(ctx, "req1", suppressedAnnIDs, suppressedAnnIDs); err != nil {
			t.Fatal(err)
		}
		var batch []any
		for i, r := range suppressedEvents("mix") {
			batch = append(batch, r, rec("track", fmt.Sprintf("ok-%d", i), 20+i, f{"uid": fmt.Sprintf("bob%d", i), "event": "E"}))
		}
		if resp := se.handle(t, batch...); len(resp.BatchItemFailures) != 0 {
			t.Fatalf("failures: %+v", resp.BatchItemFailures)
		}
		g := se.data.snapshot(t)
		if len(g.msgs) != 6 || len(g.live) != 6 {
			t.Fatalf("stored %d events in %d profiles, want the 6 normal ones", len(g.msgs), len(g.live))
		}
		for _, id := range suppressedAnnIDs {
			typ, v, _ := cutID(id)
			if p, _ := se.store.Lookup(ctx, Identifier{typ, v}); p != nil {
				t.Fatalf("%s has a profile", id)
			}
		}
		if got := se.dropped(t); got != 6 {
			t.Fatalf("dropped %d", got)
		}
	})
}

func TestUnsuppressStoresAgain(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		se := newSuppressEnv(t, b, nil)
		if err := se.list.Suppress(ctx, "req1", suppressedAnnIDs, suppressedAnnIDs); err != nil {
			t.Fatal(err)
		}
		se.handle(t, rec("track", "before", 0, f{"uid": "u1", "event": "E"}))
		if n, err := se.list.Unsuppress(ctx, []string{"email:ann@example.com"}); err != nil || n != len(suppressedAnnIDs) {
			t.Fatalf("unsuppress: %d %v", n, err)
		}
		se.clk.Add(time.Second)
		se.handle(t, suppressedEvents("after")...)
		if p := se.byID(t, "user_id:u1"); p.EventCount == 0 {
			t.Fatal("not stored after unsuppress")
		}
		if g := se.data.snapshot(t); len(g.msgs) != 6 {
			t.Fatalf("stored %d events after unsuppress, want 6", len(g.msgs))
		}
		if got := se.dropped(t); got != 1 {
			t.Fatalf("dropped %d, want the one before unsuppress", got)
		}
	})
}

// failingList cannot be read.
type failingList struct{ counted atomic.Int64 }

var errListDown = errors.New("list down")

func (*failingList) Suppressed(context.Context, []string) (bool, error) { return false, errListDown }
func (l *failingList) CountDropped(_ context.Context, _ string, n int64) error {
	l.counted.Add(n)
	return nil
}

// A list that cannot be read fails the batch for a retry: nothing is stored, nothing is
// dead-lettered, no attempt is counted.
func TestSuppressionListErrorRetriesTheBatch(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		se := newSuppressEnv(t, b, &failingList{})
		resp := se.handle(t, rec("track", "x1", 0, f{"uid": "u1", "event": "E"}), rec("track", "x2", 1, f{"uid": "u2", "event": "E"}))
		if len(resp.BatchItemFailures) != 2 {
			t.Fatalf("failures: %+v", resp.BatchItemFailures)
		}
		if n := se.calls.calls.Load(); n != 0 || len(se.dl.entries) != 0 {
			t.Fatalf("%d store calls, %d dead letters", n, len(se.dl.entries))
		}
	})
}

// A dead letter replayed after its person was suppressed is dropped and counted, not stored.
func TestSuppressionOnReplay(t *testing.T) {
	se := newSuppressEnv(t, memBackend, nil)
	if err := se.list.Suppress(context.Background(), "req1", suppressedAnnIDs, suppressedAnnIDs); err != nil {
		t.Fatal(err)
	}
	ev := kinesisEvent(t, rec("track", "r1", 0, f{"uid": "u1", "event": "E"}))
	if err := se.h.Replay(context.Background(), deadLetterOf(ev)); err != nil {
		t.Fatal(err)
	}
	if g := se.data.snapshot(t); len(g.msgs) != 0 || se.dropped(t) != 1 {
		t.Fatalf("replay stored %d events, dropped %d", len(g.msgs), se.dropped(t))
	}
}

func cutID(s string) (string, string, bool) {
	id, ok := ParseIdentifier(s)
	return id.Type, id.Value, ok
}

// deadLetterOf is the dead letter of an event's first record.
func deadLetterOf(ev events.KinesisEvent) deadletter.Entry {
	return deadletter.Entry{Stage: Stage, Kind: KindEvent, Reason: "retries_exhausted", Payload: ev.Records[0].Kinesis.Data}
}

// An invalid record of a suppressed person is dropped and counted, not dead-lettered (a dead
// letter would keep its data); an invalid record of anyone else is still dead-lettered.
func TestSuppressedInvalidRecordIsNotDeadLettered(t *testing.T) {
	se := newSuppressEnv(t, memBackend, nil)
	if err := se.list.Suppress(context.Background(), "req1", suppressedAnnIDs, suppressedAnnIDs); err != nil {
		t.Fatal(err)
	}
	bad := func(mid, uid string) tracking.Record {
		r := rec("track", mid, 0, f{"uid": uid})
		r.Message.Event = strings.Repeat("x", tracking.MaxNameBytes+1)
		return r
	}
	if resp := se.handle(t, bad("i1", "u1"), bad("i2", "someone")); len(resp.BatchItemFailures) != 0 {
		t.Fatalf("failures: %+v", resp.BatchItemFailures)
	}
	if len(se.dl.entries) != 1 || se.dl.entries[0].Reason != "invalid_record" || se.dropped(t) != 1 {
		t.Fatalf("dead letters %+v, dropped %d", se.dl.entries, se.dropped(t))
	}
}
