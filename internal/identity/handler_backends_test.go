package identity

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/serverless-cdp/cdp/internal/change"
	"github.com/serverless-cdp/cdp/internal/deadletter"
	"github.com/serverless-cdp/cdp/internal/stream"
)

// fault is trouble injected into a handler's store: "refuse" (reads and writes touching the
// message's marker are refused, as DynamoDB refuses what it cannot hold), "refuse-writes", or
// "hang" (reads touching it hang until the caller gives up).
type fault struct {
	kind string
	ref  MessageRef
}

// handlerEnv is a Handler with its store, dead letters and changes stream, on one backend.
type handlerEnv interface {
	handler() *Handler
	byID(t testing.TB, id string) *Profile
	deadLetters(t *testing.T) []deadletter.Entry
	// published returns the change records published, waiting until there are want.
	published(t *testing.T, want int) [][]byte
}

// handlerBackend opens a handlerEnv; the in-memory one always, DynamoDB Local and
// kinesis-mock with the integration build tag.
type handlerBackend struct {
	name string
	open func(t *testing.T, f fault, cfg HandlerConfig, opt Options) handlerEnv
}

func eachHandlerBackend(t *testing.T, fn func(t *testing.T, open func(t *testing.T, f fault, cfg HandlerConfig, opt Options) handlerEnv)) {
	for _, b := range append([]handlerBackend{{"mem", newMemHandlerEnv}}, integrationHandlerBackends()...) {
		t.Run(b.name, func(t *testing.T) { fn(t, b.open) })
	}
}

// memHandlerEnv is a handler on a MemStore, publishing to and dead-lettering into memory.
type memHandlerEnv struct {
	*env
	h   *Handler
	dl  *recordingDeadLetters
	pub *memPublisher
}

func newMemHandlerEnv(t *testing.T, f fault, cfg HandlerConfig, opt Options) handlerEnv {
	t.Helper()
	rules, _ := Compile(Rules{})
	m := NewMemStore(nil)
	var g GraphStore = m
	if f.kind != "" {
		g = &faultyGraph{GraphStore: m, f: f}
	}
	e := &memHandlerEnv{env: &env{store: m, data: memData{m}, proc: NewProcessor(m, StaticRules{rules}, opt)}, dl: &recordingDeadLetters{}, pub: &memPublisher{}}
	cfg.Processor, cfg.Store = NewProcessor(g, StaticRules{rules}, opt), m
	if cfg.Changes == nil {
		cfg.Changes = e.pub
	}
	if cfg.DeadLetters == nil {
		cfg.DeadLetters = e.dl
	}
	e.h = NewHandler(cfg)
	return e
}

func (e *memHandlerEnv) handler() *Handler { return e.h }

func (e *memHandlerEnv) deadLetters(*testing.T) []deadletter.Entry {
	e.dl.mu.Lock()
	defer e.dl.mu.Unlock()
	return append([]deadletter.Entry(nil), e.dl.entries...)
}

func (e *memHandlerEnv) published(t *testing.T, want int) [][]byte {
	e.pub.mu.Lock()
	defer e.pub.mu.Unlock()
	if len(e.pub.recs) < want {
		t.Fatalf("%d change records published, want %d", len(e.pub.recs), want)
	}
	out := make([][]byte, 0, len(e.pub.recs))
	for _, r := range e.pub.recs {
		out = append(out, r.Data)
	}
	return out
}

// memPublisher keeps what is published.
type memPublisher struct {
	mu   sync.Mutex
	recs []stream.Record
}

func (p *memPublisher) Put(_ context.Context, recs []stream.Record) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.recs = append(p.recs, recs...)
	return nil
}

// faultyGraph injects a fault at the port.
type faultyGraph struct {
	GraphStore
	f fault
}

var errInjectedRefusal = fmt.Errorf("%w: ValidationException: injected: Item size has exceeded the maximum allowed size", ErrRefused)

func (g *faultyGraph) Markers(ctx context.Context, refs []MessageRef, consistent, legacy bool) (map[MessageRef]Marker, error) {
	for _, r := range refs {
		if r != g.f.ref {
			continue
		}
		switch g.f.kind {
		case "refuse":
			return nil, errInjectedRefusal
		case "hang":
			<-ctx.Done()
			return nil, ctx.Err()
		}
	}
	return g.GraphStore.Markers(ctx, refs, consistent, legacy)
}

func (g *faultyGraph) Commit(ctx context.Context, c *Commit) error {
	for _, e := range c.Events {
		if (g.f.kind == "refuse" || g.f.kind == "refuse-writes") && (MessageRef{Source: e.SourceID, ID: e.Message.MessageID}) == g.f.ref {
			return errInjectedRefusal
		}
	}
	return g.GraphStore.Commit(ctx, c)
}

// A value the store refuses fails neither the batch nor anyone else's record: the group it is
// in is bisected until it stands alone, and only it is dead-lettered (store_rejected).
func TestHandlerStoreRefusalIsolatesTheRecord(t *testing.T) {
	eachHandlerBackend(t, func(t *testing.T, open func(t *testing.T, f fault, cfg HandlerConfig, opt Options) handlerEnv) {
		for _, kind := range []string{"refuse", "refuse-writes"} {
			t.Run(kind, func(t *testing.T) {
				e := open(t, fault{kind: kind, ref: MessageRef{Source: "src1", ID: "refused-m23"}}, HandlerConfig{}, Options{})
				batch := sixty("refused")
				// u23's record shares a profile with the next one: its component has two records.
				batch[24] = rec("track", "refused-m24", 24, f{"uid": "u23", "event": "Viewed"})
				resp, err := e.handler().Handle(context.Background(), kinesisEvent(t, batch...))
				if err != nil || len(resp.BatchItemFailures) != 0 {
					t.Fatalf("handle: %v, failures %+v", err, resp.BatchItemFailures)
				}
				es := e.deadLetters(t)
				if len(es) != 1 || es[0].Reason != "store_rejected" || es[0].Meta["sequenceNumber"] != "1023" || !strings.Contains(es[0].Error, "ValidationException") {
					t.Fatalf("dead letters: want only record 23 (store_rejected), got %+v", es)
				}
				for i := 0; i < 60; i++ {
					if i == 23 || i == 24 {
						continue
					}
					if p := e.byID(t, fmt.Sprintf("user_id:u%d", i)); p.EventCount != 1 {
						t.Fatalf("u%d: %d events", i, p.EventCount)
					}
				}
				if p := e.byID(t, "user_id:u23"); p.EventCount != 1 {
					t.Fatalf("u23: %d events, want only the innocent record of the pair", p.EventCount)
				}
			})
		}
	})
}

// A poison record whose processing times out on every attempt reaches MaxAttempts and is
// dead-lettered (the bookkeeping survives the deadline); the records around it are stored, and
// none of them is dead-lettered. The loop delivers like Lambda: each retry starts at the first
// record reported failed.
func TestHandlerPoisonTimeoutsReachMaxAttempts(t *testing.T) {
	eachHandlerBackend(t, func(t *testing.T, open func(t *testing.T, f fault, cfg HandlerConfig, opt Options) handlerEnv) {
		e := open(t, fault{kind: "hang", ref: MessageRef{Source: "src1", ID: "p-3"}},
			HandlerConfig{MaxAttempts: 3, Reserve: 300 * time.Millisecond, BookkeepingTimeout: 2 * time.Second}, Options{Reserve: 50 * time.Millisecond})
		var batch []any
		for i := 0; i < 8; i++ {
			batch = append(batch, rec("track", fmt.Sprintf("p-%d", i), i, f{"uid": fmt.Sprintf("u%d", i), "event": "E"}))
		}
		recs := kinesisEvent(t, batch...).Records
		invocations := 0
		for ; len(recs) > 0 && invocations < 12; invocations++ {
			ctx, cancel := context.WithTimeout(context.Background(), 1200*time.Millisecond)
			resp, err := e.handler().Handle(ctx, events.KinesisEvent{Records: recs})
			cancel()
			if err != nil {
				t.Fatalf("invocation %d: %v", invocations, err)
			}
			recs = recs[firstFailed(recs, resp):]
		}
		if len(recs) != 0 {
			t.Fatalf("after %d invocations %d records are still pending", invocations, len(recs))
		}
		es := e.deadLetters(t)
		if len(es) != 1 || es[0].Reason != "retries_exhausted" || es[0].Meta["sequenceNumber"] != "1003" {
			t.Fatalf("dead letters: %+v", es)
		}
		for i := 0; i < 8; i++ {
			if i == 3 {
				continue
			}
			if p := e.byID(t, fmt.Sprintf("user_id:u%d", i)); p.EventCount != 1 {
				t.Fatalf("u%d: %d events", i, p.EventCount)
			}
		}
		t.Logf("%d invocations", invocations)
	})
}

// firstFailed is where Lambda resumes a batch: the first record reported failed (the end if
// none).
func firstFailed(recs []events.KinesisEventRecord, resp events.KinesisEventResponse) int {
	next := len(recs)
	for _, f := range resp.BatchItemFailures {
		for i, r := range recs {
			if r.Kinesis.SequenceNumber == f.ItemIdentifier && i < next {
				next = i
			}
		}
	}
	return next
}

// A retried batch is processed record by record; its change records still describe each
// profile once, with the traits of a new profile.
func TestHandlerRetriedBatchFoldsChanges(t *testing.T) {
	eachHandlerBackend(t, func(t *testing.T, open func(t *testing.T, f fault, cfg HandlerConfig, opt Options) handlerEnv) {
		e := open(t, fault{}, HandlerConfig{}, Options{})
		ctx := context.Background()
		first := rec("identify", "f1", 0, f{"uid": "u", "traits": `{"plan":"pro"}`})
		if _, err := e.handler().cfg.Store.CountAttempt(ctx, first.SourceID, first.Message.MessageID); err != nil {
			t.Fatal(err)
		}
		resp, err := e.handler().Handle(ctx, kinesisEvent(t, first, rec("track", "f2", 1, f{"uid": "u", "event": "E"}), rec("track", "f3", 2, f{"uid": "v", "event": "E"})))
		if err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("handle: %v %+v", err, resp)
		}
		recs := e.published(t, 2)
		byUser := map[string]change.Record{}
		for _, r := range recs {
			var ch change.Record
			_ = json.Unmarshal(r, &ch)
			byUser[ch.Events[0].UserID] = ch
		}
		u := byUser["u"]
		if len(recs) != 2 || !u.Created || len(u.Events) != 2 || string(u.Traits["plan"]) != `"pro"` {
			t.Fatalf("change records: %d, u: %+v", len(recs), u)
		}
	})
}
