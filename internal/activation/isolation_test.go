package activation

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/serverless-cdp/cdp/internal/activations"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/serverless-cdp/cdp/internal/destination"
	"github.com/serverless-cdp/cdp/internal/webhook"
)

// newEnvWith is newEnv with a tuned Config.
func newEnvWith(t *testing.T, tune func(*Config)) *env {
	t.Helper()
	clk := &clock{t: time.Now().UTC()}
	st, bad, destStore := newBackend(t)
	dests := destination.NewServiceWith(destStore, destination.WithClock(clk.Now),
		destination.WithPolicy(webhook.Policy{AllowLoopback: true}))
	cfg := Config{Timeout: 5 * time.Second, SpaceID: "spc_1", Now: clk.Now}
	tune(&cfg)
	d := NewWithStore(st, bad, dests, webhook.NewClient(webhook.Options{Policy: webhook.Policy{AllowLoopback: true}}), cfg)
	return &env{t: t, clock: clk, dests: dests, d: d}
}

// gate makes a receiver hang (accept, read, never answer) until opened.
type gate struct {
	mu   sync.Mutex
	open chan struct{}
	once sync.Once
}

func newGate() *gate { return &gate{open: make(chan struct{})} }

func (g *gate) release() { g.once.Do(func() { close(g.open) }) }

// hangingReceiver answers 200 only once the gate is released; until then requests hang.
func hangingReceiver(t *testing.T, g *gate) *receiver {
	r := newReceiver(t)
	r.ignTS = true
	inner := r.srv.Config.Handler
	r.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		select {
		case <-g.open:
		case <-req.Context().Done():
			return
		}
		inner.ServeHTTP(w, req)
	})
	t.Cleanup(g.release) // before the server's Close, registered earlier, waits for handlers
	return r
}

// TestHungDestinationHandedToRetryQueue: an in-batch attempt to a receiver that never answers
// ends at InBatchTimeout (not the 5 s webhook timeout); the message goes to the retry queue due
// at once, without using a step of the schedule; the next batch does not try that destination
// again (its messages go straight to the queue); the healthy destination gets everything; and
// the retrier delivers the queued messages under the same webhook-ids once the receiver answers.
func TestHungDestinationHandedToRetryQueue(t *testing.T) {
	e := newEnvWith(t, func(c *Config) { c.InBatchTimeout = 300 * time.Millisecond })
	g := newGate()
	hung, ok := hangingReceiver(t, g), newReceiver(t)
	ok.ignTS = true
	hungDest := e.dest(hung, destination.Spec{Name: "hung"})
	okDest := e.dest(ok, destination.Spec{Name: "ok"})

	start := time.Now()
	e.handle(kinesisEvent(t, audienceRecord("rec_1", activations.KindAudienceEntered), audienceRecord("rec_2", activations.KindAudienceExited)))
	first := time.Since(start)
	start = time.Now()
	e.handle(kinesisEvent(t, audienceRecord("rec_3", activations.KindAudienceEntered)))
	second := time.Since(start)
	t.Logf("batch with a hung destination took %v, the next one %v (webhook timeout 5s)", first.Round(time.Millisecond), second.Round(time.Millisecond))
	if first > 2*time.Second || second > time.Second {
		t.Fatalf("batches took %v and %v: the hung destination held them", first, second)
	}
	if n := len(ok.delivered()); n != 3 {
		t.Fatalf("healthy destination got %d of 3", n)
	}
	for _, id := range []string{"rec_1", "rec_2", "rec_3"} {
		d, err := e.d.Delivery(context.Background(), hungDest.ID, id)
		if err != nil || d.Status != StatusRetrying || d.Retries != 0 || d.NextAttemptAt == nil || d.NextAttemptAt.After(e.clock.Now()) {
			t.Fatalf("%s at the hung destination: %+v %v (want retrying, due now, no schedule step used)", id, d, err)
		}
	}
	if d, _ := e.d.Delivery(context.Background(), hungDest.ID, "rec_3"); d.Attempts != 0 {
		t.Fatalf("rec_3 was attempted although the destination had just timed out: %+v", d)
	}
	g.release()
	if res, err := e.d.Tick(context.Background()); err != nil || res.Delivered != 3 {
		t.Fatalf("tick after recovery: %+v %v", res, err)
	}
	ids := map[string]bool{}
	for _, r := range hung.delivered() {
		ids[r.header.Get("webhook-id")] = true
	}
	for _, id := range []string{"rec_1", "rec_2", "rec_3"} {
		if !ids[WebhookID(id, hungDest.ID)] {
			t.Fatalf("%s not delivered under its stable webhook-id: %v", id, ids)
		}
	}
	if d, _ := e.d.Delivery(context.Background(), okDest.ID, "rec_1"); d.Status != StatusDelivered {
		t.Fatalf("healthy: %+v", d)
	}
}

// TestPoisonActivationRecordsDeadLetteredAlone: undecodable data, an id too long for a key and
// a payload too large for an item each go to the dead letters on their own, with a reason; the
// good records of the same batch are delivered and the batch reports no failure.
func TestPoisonActivationRecordsDeadLetteredAlone(t *testing.T) {
	e := newEnv(t, webhook.Policy{AllowLoopback: true})
	r := newReceiver(t)
	dest := e.dest(r, destination.Spec{Subscriptions: destination.Subscriptions{Audiences: []string{"*"}, Traits: []string{"*"}}})
	long := audienceRecord(strings.Repeat("x", 3000), activations.KindAudienceEntered)
	big := activations.Record{ID: "rec_big", Kind: activations.KindTraitsChanged, ProfileID: "prof_1", UserID: "u1",
		Traits: map[string]json.RawMessage{"blob": json.RawMessage(`"` + strings.Repeat("b", 500<<10) + `"`)}}
	ev := kinesisEvent(t, audienceRecord("rec_1", activations.KindAudienceEntered), long, big, audienceRecord("rec_2", activations.KindAudienceExited))
	ev.Records = append(ev.Records[:1], append([]events.KinesisEventRecord{{Kinesis: events.KinesisRecord{
		Data: []byte("{not json"), SequenceNumber: "99", PartitionKey: "p"}}}, ev.Records[1:]...)...)
	resp, err := e.d.HandleKinesis(context.Background(), ev)
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("batch: %v %+v", err, resp.BatchItemFailures)
	}
	if n := len(r.delivered()); n != 2 {
		t.Fatalf("good records delivered: %d of 2", n)
	}
	dls, _, err := e.d.DeadLetters(context.Background(), UndecodableDestination, 10, "")
	if err != nil || len(dls) != 3 {
		t.Fatalf("dead letters: %d %v, want 3", len(dls), err)
	}
	reasons := ""
	for _, dl := range dls {
		reasons += dl.LastError + "\n"
	}
	for _, want := range []string{"decode", "record id is 3000 bytes", "payload for destination " + dest.ID} {
		if !strings.Contains(reasons, want) {
			t.Fatalf("no dead letter with %q among:\n%s", want, reasons)
		}
	}
	// Seen twice (Kinesis redelivers): still two deliveries, three dead letters.
	if resp, err := e.d.HandleKinesis(context.Background(), ev); err != nil || len(resp.BatchItemFailures) != 0 || len(r.delivered()) != 2 {
		t.Fatalf("redelivery: %v %+v, delivered %d", err, resp, len(r.delivered()))
	}
}

// TestActivationHandlerHonoursDeadline: with the invocation's deadline already inside the
// reserve, the handler attempts nothing and reports every record as a batch item failure (so
// Kinesis hands them over again); the next invocation delivers them.
func TestActivationHandlerHonoursDeadline(t *testing.T) {
	e := newEnvWith(t, func(c *Config) { c.Reserve = 2 * time.Second })
	r := newReceiver(t)
	r.ignTS = true
	e.dest(r, destination.Spec{})
	ev := kinesisEvent(t, audienceRecord("rec_1", activations.KindAudienceEntered), audienceRecord("rec_2", activations.KindAudienceEntered))
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	resp, err := e.d.HandleKinesis(ctx, ev)
	if err != nil || len(resp.BatchItemFailures) != 2 || len(r.requests()) != 0 {
		t.Fatalf("near the deadline: %v failures %+v, requests %d", err, resp.BatchItemFailures, len(r.requests()))
	}
	e.handle(ev)
	if n := len(r.delivered()); n != 2 {
		t.Fatalf("next invocation delivered %d of 2", n)
	}
}

// TestTickHonoursDeadlineAndRecordsOutcome: a Tick whose deadline leaves no room for an attempt
// leaves the queue as it is; a Tick whose context ends during an attempt still records the
// outcome (the delivery goes back to the queue, not stuck in flight), and the next Tick delivers.
func TestTickHonoursDeadlineAndRecordsOutcome(t *testing.T) {
	e := newEnvWith(t, func(c *Config) { c.Reserve = time.Second; c.InBatchTimeout = 200 * time.Millisecond })
	g := newGate()
	r := hangingReceiver(t, g)
	dest := e.dest(r, destination.Spec{})
	e.handle(kinesisEvent(t, audienceRecord("rec_1", activations.KindAudienceEntered)))
	if d, _ := e.d.Delivery(context.Background(), dest.ID, "rec_1"); d.Status != StatusRetrying {
		t.Fatalf("after the batch: %+v", d)
	}
	before := len(r.requests())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second) // < Reserve + 5 s timeout
	res, err := e.d.Tick(ctx)
	cancel()
	if err != nil || res.Delivered+res.Retried+res.DeadLettered != 0 || len(r.requests()) != before {
		t.Fatalf("tick near its deadline: %+v %v", res, err)
	}
	if d, _ := e.d.Delivery(context.Background(), dest.ID, "rec_1"); d.Status != StatusRetrying || d.Attempts != 1 {
		t.Fatalf("after the short tick: %+v", d)
	}
	// The context is cancelled while the attempt hangs: the outcome must still be recorded.
	ctx, cancel = context.WithCancel(context.Background())
	go func() {
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if d, _ := e.d.Delivery(context.Background(), dest.ID, "rec_1"); d.Status == StatusInflight {
				time.Sleep(100 * time.Millisecond) // let the request reach the hanging receiver
				cancel()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	if _, err := e.d.Tick(ctx); err != nil {
		t.Fatalf("cancelled tick: %v", err)
	}
	d, _ := e.d.Delivery(context.Background(), dest.ID, "rec_1")
	if d.Status != StatusRetrying || d.Attempts != 2 || d.Retries != 1 {
		t.Fatalf("outcome of the cancelled attempt not recorded: %+v", d)
	}
	g.release()
	if got := e.next(dest.ID, "rec_1"); got.Status != StatusDelivered {
		t.Fatalf("after recovery: %+v", got)
	}
}

// TestPerDestinationConcurrencyAndOrder: a destination gets at most Config.Concurrency requests
// at once (and more than one, so a slow receiver does not serialise the batch), and one
// profile's messages arrive in order.
func TestPerDestinationConcurrencyAndOrder(t *testing.T) {
	e := newEnvWith(t, func(c *Config) { c.Concurrency = 3 })
	r := newReceiver(t)
	r.ignTS = true
	var mu sync.Mutex
	inFlight, peak := 0, 0
	inner := r.srv.Config.Handler
	r.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		inFlight++
		peak = max(peak, inFlight)
		mu.Unlock()
		time.Sleep(50 * time.Millisecond) // a receiver that takes a while
		inner.ServeHTTP(w, req)
		mu.Lock()
		inFlight--
		mu.Unlock()
	})
	e.dest(r, destination.Spec{})
	var recs []activations.Record
	for i := range 24 {
		rec := audienceRecord(fmt.Sprintf("rec_%02d", i), activations.KindAudienceEntered)
		rec.ProfileID = fmt.Sprintf("prof_%d", i%6)
		recs = append(recs, rec)
	}
	e.handle(kinesisEvent(t, recs...))
	got := r.delivered()
	if len(got) != 24 {
		t.Fatalf("delivered %d of 24", len(got))
	}
	if peak > 3 || peak < 2 {
		t.Fatalf("peak requests in flight %d, want 2..3", peak)
	}
	last := map[string]string{}
	for _, g := range got {
		var m struct {
			MessageID string `json:"messageId"`
		}
		json.Unmarshal(g.body, &m)
		var n int
		fmt.Sscanf(m.MessageID, "rec_%d", &n)
		prof := fmt.Sprintf("prof_%d", n%6)
		if m.MessageID < last[prof] {
			t.Fatalf("%s arrived after %s for %s", m.MessageID, last[prof], prof)
		}
		last[prof] = m.MessageID
	}
	t.Logf("24 messages, 6 profiles: peak %d requests in flight (limit 3), each profile in order", peak)
}
