package activation

import (
	"context"
	"encoding/json"
	"github.com/serverless-cdp/cdp/internal/activations"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/serverless-cdp/cdp/internal/destination"
	"github.com/serverless-cdp/cdp/internal/tracking"
	"github.com/serverless-cdp/cdp/internal/webhook"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.t) {
		c.t = t
	}
}

// receiver is a webhook endpoint on loopback that verifies signatures with the Standard Webhooks
// reference library. status decides the answer of each request (by arrival order).
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	secret string
	ignTS  bool
	reqs   []got
	status func(n int) int
	delay  time.Duration
}

type got struct {
	header http.Header
	body   []byte
	at     time.Time
	status int
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t, status: func(int) int { return 200 }}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	if r.delay > 0 {
		select {
		case <-time.After(r.delay):
		case <-req.Context().Done():
			return
		}
	}
	r.mu.Lock()
	n := len(r.reqs)
	st := r.status(n)
	r.reqs = append(r.reqs, got{header: req.Header.Clone(), body: body, at: time.Now(), status: st})
	secret, ign := r.secret, r.ignTS
	r.mu.Unlock()
	if secret != "" {
		wh, err := standardwebhooks.NewWebhook(secret)
		if err == nil {
			if ign {
				err = wh.VerifyIgnoringTimestamp(body, req.Header)
			} else {
				err = wh.Verify(body, req.Header)
			}
		}
		if err != nil {
			r.t.Errorf("signature: %v", err)
			w.WriteHeader(401)
			return
		}
	}
	w.WriteHeader(st)
}

func (r *receiver) requests() []got {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]got(nil), r.reqs...)
}

func (r *receiver) delivered() []got {
	var out []got
	for _, g := range r.requests() {
		if g.status >= 200 && g.status < 300 {
			out = append(out, g)
		}
	}
	return out
}

type env struct {
	t     *testing.T
	clock *clock
	dests *destination.Service
	d     *Deliverer
}

func newEnv(t *testing.T, policy webhook.Policy) *env {
	t.Helper()
	clk := &clock{t: time.Now().UTC()}
	st, bad, destStore := newBackend(t)
	dests := destination.NewServiceWith(destStore, destination.WithClock(clk.Now),
		destination.WithPolicy(webhook.Policy{AllowLoopback: true}))
	d := NewWithStore(st, bad, dests, webhook.NewClient(webhook.Options{Policy: policy}), Config{
		Timeout: 2 * time.Second, SpaceID: "spc_1", Now: clk.Now,
	})
	return &env{t: t, clock: clk, dests: dests, d: d}
}

func (e *env) dest(r *receiver, spec destination.Spec) destination.Destination {
	e.t.Helper()
	spec.URL = r.srv.URL + "/hook"
	if spec.Name == "" {
		spec.Name = "test"
	}
	if len(spec.Subscriptions.Audiences) == 0 {
		spec.Subscriptions.Audiences = []string{"*"}
	}
	d, secret, err := e.dests.Create(context.Background(), spec)
	if err != nil {
		e.t.Fatal(err)
	}
	r.mu.Lock()
	r.secret = secret
	r.mu.Unlock()
	return d
}

func audienceRecord(id, kind string) activations.Record {
	return activations.Record{ID: id, Kind: kind, ProfileID: "prof_1", UserID: "u1", AnonymousID: "a1", Email: "ada@example.com",
		Audience: &activations.Audience{ID: "aud_1", Key: "vip_customers", Name: "VIP"}, OccurredAt: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func kinesisEvent(t testing.TB, recs ...activations.Record) events.KinesisEvent {
	var ev events.KinesisEvent
	for i, r := range recs {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		ev.Records = append(ev.Records, events.KinesisEventRecord{EventSource: "aws:kinesis",
			Kinesis: events.KinesisRecord{Data: b, PartitionKey: r.ProfileID, SequenceNumber: strconv.Itoa(i + 1)}})
	}
	return ev
}

func (e *env) handle(ev events.KinesisEvent) {
	e.t.Helper()
	resp, err := e.d.HandleKinesis(context.Background(), ev)
	if err != nil || len(resp.BatchItemFailures) > 0 {
		e.t.Fatalf("handle: %v %+v", err, resp.BatchItemFailures)
	}
}

// next moves the fake clock to a delivery's next attempt and runs Tick.
func (e *env) next(destID, recordID string) Delivery {
	e.t.Helper()
	del, err := e.d.Delivery(context.Background(), destID, recordID)
	if err != nil {
		e.t.Fatal(err)
	}
	if del.NextAttemptAt != nil {
		e.clock.Set(del.NextAttemptAt.Add(time.Second))
	}
	if _, err := e.d.Tick(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	del, _ = e.d.Delivery(context.Background(), destID, recordID)
	return del
}

func TestEnteredAndExitedDeliveredSignedOnce(t *testing.T) {
	e := newEnv(t, webhook.Policy{AllowLoopback: true})
	r := newReceiver(t)
	dest := e.dest(r, destination.Spec{Headers: map[string]string{"Authorization": "Bearer abc"}})
	ev := kinesisEvent(t, audienceRecord("rec_in", activations.KindAudienceEntered), audienceRecord("rec_out", activations.KindAudienceExited))
	e.handle(ev)
	e.handle(ev) // at-least-once: the same batch again
	reqs := r.requests()
	if len(reqs) != 2 {
		t.Fatalf("want 2 requests, got %d", len(reqs))
	}
	for i, want := range []struct {
		event string
		in    bool
		rec   string
	}{{EventAudienceEntered, true, "rec_in"}, {EventAudienceExited, false, "rec_out"}} {
		var p map[string]any
		if err := json.Unmarshal(reqs[i].body, &p); err != nil {
			t.Fatal(err)
		}
		props := p["properties"].(map[string]any)
		ctx := p["context"].(map[string]any)
		personas := ctx["personas"].(map[string]any)
		if p["type"] != "track" || p["event"] != want.event || props["audience_key"] != "vip_customers" ||
			props["vip_customers"] != want.in || p["userId"] != "u1" || p["anonymousId"] != "a1" ||
			ctx["traits"].(map[string]any)["email"] != "ada@example.com" || p["messageId"] != want.rec ||
			personas["computation_class"] != "audience" || personas["computation_key"] != "vip_customers" ||
			personas["computation_id"] != "aud_1" || personas["space_id"] != "spc_1" {
			t.Errorf("payload %d: %s", i, reqs[i].body)
		}
		if reqs[i].header.Get("webhook-id") != WebhookID(want.rec, dest.ID) || reqs[i].header.Get("Authorization") != "Bearer abc" {
			t.Errorf("headers %v", reqs[i].header)
		}
	}
	log, _, err := e.d.Deliveries(context.Background(), dest.ID, 10, "")
	if err != nil || len(log) != 2 || log[0].Status != StatusDelivered || log[0].Attempts != 1 {
		t.Fatalf("log %+v %v", log, err)
	}
	st, _ := e.d.Stats(context.Background(), dest.ID)
	if st.Delivered != 2 || st.Retried != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestRetriesUntilReceiverRecovers(t *testing.T) {
	e := newEnv(t, webhook.Policy{AllowLoopback: true})
	r := newReceiver(t)
	r.ignTS = true // the fake clock runs ahead of the receiver's real clock
	r.status = func(n int) int {
		if n < 5 {
			return 503
		}
		return 200
	}
	dest := e.dest(r, destination.Spec{})
	e.handle(kinesisEvent(t, audienceRecord("rec_1", activations.KindAudienceEntered), audienceRecord("rec_2", activations.KindAudienceExited)))
	// First attempt of rec_1 failed; rec_2 went to the queue without an attempt (destination failing).
	for step := 0; step < 8 && len(r.delivered()) < 2; step++ {
		e.next(dest.ID, "rec_1")
		e.next(dest.ID, "rec_2")
	}
	if n := len(r.delivered()); n != 2 {
		t.Fatalf("delivered %d after recovery; requests %d", n, len(r.requests()))
	}
	ids := map[string]bool{}
	for _, g := range r.requests() {
		ids[g.header.Get("webhook-id")] = true
	}
	if len(ids) != 2 {
		t.Fatalf("webhook-id not stable across retries: %v", ids)
	}
	d1, _ := e.d.Delivery(context.Background(), dest.ID, "rec_1")
	d2, _ := e.d.Delivery(context.Background(), dest.ID, "rec_2")
	if d1.Status != StatusDelivered || d2.Status != StatusDelivered || d1.Attempts+d2.Attempts != len(r.requests()) || d1.Attempts < 2 {
		t.Fatalf("log: %+v %+v (requests %d)", d1, d2, len(r.requests()))
	}
	// Nothing more is due, ever.
	e.clock.Set(e.clock.Now().Add(48 * time.Hour))
	res, err := e.d.Tick(context.Background())
	if err != nil || res.Due != 0 || len(r.delivered()) != 2 {
		t.Fatalf("after: %+v %v", res, err)
	}
	st, _ := e.d.Stats(context.Background(), dest.ID)
	if st.Delivered != 2 || st.Retried != 5 {
		t.Fatalf("stats %+v", st)
	}
	t.Logf("rec_1 %d attempts, rec_2 %d attempts; stats %+v", d1.Attempts, d2.Attempts, st)
}

func TestDeadLettersAndRedrive(t *testing.T) {
	e := newEnv(t, webhook.Policy{AllowLoopback: true})
	r := newReceiver(t)
	r.ignTS = true
	var mu sync.Mutex
	up := false
	r.status = func(int) int {
		mu.Lock()
		defer mu.Unlock()
		if up {
			return 204
		}
		return 500
	}
	dest := e.dest(r, destination.Spec{})
	e.handle(kinesisEvent(t, audienceRecord("rec_1", activations.KindAudienceEntered)))
	start := e.clock.Now()
	var del Delivery
	for i := 0; i < 20; i++ {
		if del = e.next(dest.ID, "rec_1"); del.Status == StatusDead {
			break
		}
	}
	if del.Status != StatusDead || del.Attempts != len(DefaultSchedule)+1 || len(r.requests()) != del.Attempts {
		t.Fatalf("want dead after %d attempts: %+v, requests %d", len(DefaultSchedule)+1, del, len(r.requests()))
	}
	t.Logf("dead-lettered after %d attempts over %v of fake time", del.Attempts, e.clock.Now().Sub(start).Round(time.Minute))
	dls, _, err := e.d.DeadLetters(context.Background(), dest.ID, 10, "")
	if err != nil || len(dls) != 1 || dls[0].RecordID != "rec_1" || dls[0].Attempts != del.Attempts {
		t.Fatalf("dead letters %+v %v", dls, err)
	}
	dl, err := e.d.DeadLetter(context.Background(), dest.ID, "rec_1")
	if err != nil || !json.Valid(dl.Payload) || dl.LastStatus != 500 {
		t.Fatalf("dead letter %+v %v", dl, err)
	}
	mu.Lock()
	up = true
	mu.Unlock()
	n, err := e.d.Redrive(context.Background(), dest.ID)
	if err != nil || n != 1 {
		t.Fatalf("redrive %d %v", n, err)
	}
	if _, err := e.d.Redrive(context.Background(), dest.ID, "rec_1"); err == nil {
		t.Fatal("redriving twice should fail")
	}
	del = e.next(dest.ID, "rec_1")
	if del.Status != StatusDelivered || len(r.delivered()) != 1 {
		t.Fatalf("after redrive: %+v delivered %d", del, len(r.delivered()))
	}
	if _, err := e.d.Tick(context.Background()); err != nil || len(r.delivered()) != 1 {
		t.Fatal("delivered twice")
	}
	dls, _, _ = e.d.DeadLetters(context.Background(), dest.ID, 10, "")
	st, _ := e.d.Stats(context.Background(), dest.ID)
	if len(dls) != 0 || st.DeadLettered != 1 || st.Redriven != 1 || st.Delivered != 1 {
		t.Fatalf("after redrive: %d dead letters, stats %+v", len(dls), st)
	}
}

func TestSlowDestinationDoesNotDelayOther(t *testing.T) {
	e := newEnv(t, webhook.Policy{AllowLoopback: true})
	slow, fast := newReceiver(t), newReceiver(t)
	slow.delay = 5 * time.Second
	slowDest := e.dest(slow, destination.Spec{Name: "slow", TimeoutSeconds: 1})
	fastDest := e.dest(fast, destination.Spec{Name: "fast"})
	start := time.Now()
	e.handle(kinesisEvent(t, audienceRecord("rec_1", activations.KindAudienceEntered), audienceRecord("rec_2", activations.KindAudienceEntered)))
	took := time.Since(start)
	fr := fast.delivered()
	if len(fr) != 2 {
		t.Fatalf("fast receiver got %d", len(fr))
	}
	latency := fr[1].at.Sub(start)
	t.Logf("healthy receiver had both messages after %v; slow destination's timeout 1s; handler returned after %v", latency.Round(time.Millisecond), took.Round(time.Millisecond))
	if latency >= time.Second {
		t.Fatalf("healthy destination waited %v for the slow one", latency)
	}
	if took > 3*time.Second {
		t.Fatalf("handler took %v: the slow destination held the batch", took)
	}
	for _, id := range []string{"rec_1", "rec_2"} {
		d, _ := e.d.Delivery(context.Background(), slowDest.ID, id)
		if d.Status != StatusRetrying {
			t.Fatalf("slow %s: %+v", id, d)
		}
	}
	if d, _ := e.d.Delivery(context.Background(), fastDest.ID, "rec_1"); d.Status != StatusDelivered {
		t.Fatalf("fast: %+v", d)
	}
}

func TestPermanentFailuresAndGone(t *testing.T) {
	e := newEnv(t, webhook.Policy{AllowLoopback: true})
	bad, gone := newReceiver(t), newReceiver(t)
	bad.status = func(int) int { return 400 }
	gone.status = func(int) int { return 410 }
	badDest := e.dest(bad, destination.Spec{Name: "bad"})
	goneDest := e.dest(gone, destination.Spec{Name: "gone"})
	e.handle(kinesisEvent(t, audienceRecord("rec_1", activations.KindAudienceEntered), audienceRecord("rec_2", activations.KindAudienceExited)))
	if n := len(bad.requests()); n != 2 {
		t.Fatalf("400 receiver got %d requests", n)
	}
	if n := len(gone.requests()); n != 1 {
		t.Fatalf("410 receiver got %d requests", n)
	}
	dls, _, _ := e.d.DeadLetters(context.Background(), badDest.ID, 10, "")
	if len(dls) != 2 || dls[0].LastStatus != 400 {
		t.Fatalf("400 dead letters: %+v", dls)
	}
	dls, _, _ = e.d.DeadLetters(context.Background(), goneDest.ID, 10, "")
	if len(dls) != 2 {
		t.Fatalf("410 dead letters: %+v", dls)
	}
	got, _ := e.dests.Get(context.Background(), goneDest.ID)
	if got.Enabled || got.DisabledReason == "" {
		t.Fatalf("410 did not disable: %+v", got)
	}
	e.handle(kinesisEvent(t, audienceRecord("rec_3", activations.KindAudienceEntered)))
	if n := len(gone.requests()); n != 1 {
		t.Fatal("disabled destination still receives")
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	e := newEnv(t, webhook.Policy{AllowLoopback: true})
	r := newReceiver(t)
	r.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(429)
	})
	dest := e.dest(r, destination.Spec{})
	now := e.clock.Now()
	e.handle(kinesisEvent(t, audienceRecord("rec_1", activations.KindAudienceEntered)))
	d, _ := e.d.Delivery(context.Background(), dest.ID, "rec_1")
	if d.Status != StatusRetrying || d.NextAttemptAt == nil || d.NextAttemptAt.Sub(now) < time.Hour-time.Second || d.LastStatus != 429 {
		t.Fatalf("%+v", d)
	}
	e.clock.Set(now.Add(30 * time.Minute))
	if res, _ := e.d.Tick(context.Background()); res.Due != 0 {
		t.Fatal("retried before Retry-After")
	}
}

func TestLoopbackRefusedUnlessAllowed(t *testing.T) {
	e := newEnv(t, webhook.Policy{}) // the production default
	r := newReceiver(t)
	dest := e.dest(r, destination.Spec{})
	e.handle(kinesisEvent(t, audienceRecord("rec_1", activations.KindAudienceEntered)))
	if len(r.requests()) != 0 {
		t.Fatal("request reached a loopback receiver")
	}
	dl, err := e.d.DeadLetter(context.Background(), dest.ID, "rec_1")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("refused: %s", dl.LastError)
	// The service refuses such URLs when they are configured, too.
	strict := destination.NewService(nil, "unused")
	if _, _, err := strict.Create(context.Background(), destination.Spec{Name: "x", URL: r.srv.URL}); err == nil {
		t.Fatal("loopback URL accepted by default")
	}
}

func TestBatchAndTraitsAndEvents(t *testing.T) {
	e := newEnv(t, webhook.Policy{AllowLoopback: true})
	r := newReceiver(t)
	dest := e.dest(r, destination.Spec{BatchSize: 10, Subscriptions: destination.Subscriptions{
		Audiences: []string{"other"}, Traits: []string{"ltv"},
		Events: []destination.EventFilter{{Type: "track", Name: "Order Completed"}},
	}})
	ev := kinesisEvent(t,
		audienceRecord("rec_aud", activations.KindAudienceEntered),
		activations.Record{ID: "rec_tr", Kind: activations.KindTraitsChanged, ProfileID: "p", UserID: "u1", Email: "ada@example.com",
			Traits: map[string]json.RawMessage{"ltv": json.RawMessage(`42.5`), "visits": json.RawMessage(`3`)}},
		activations.Record{ID: "rec_ev", Kind: activations.KindEvent, ProfileID: "p", UserID: "u1", Email: "ada@example.com",
			Event: &tracking.Message{Type: "track", Event: "Order Completed", MessageID: "m1", AnonymousID: "a9",
				Context: json.RawMessage(`{"ip":"1.2.3.4"}`)}},
		activations.Record{ID: "rec_ev2", Kind: activations.KindEvent, ProfileID: "p", Event: &tracking.Message{Type: "track", Event: "Viewed", MessageID: "m2"}},
	)
	e.handle(ev)
	reqs := r.requests()
	if len(reqs) != 1 {
		t.Fatalf("want one batch request, got %d", len(reqs))
	}
	var body struct {
		Batch []map[string]any `json:"batch"`
	}
	if err := json.Unmarshal(reqs[0].body, &body); err != nil || len(body.Batch) != 2 {
		t.Fatalf("batch %s %v", reqs[0].body, err)
	}
	id := body.Batch[0]
	if id["type"] != "identify" || id["traits"].(map[string]any)["ltv"] != 42.5 || id["traits"].(map[string]any)["visits"] != nil ||
		id["traits"].(map[string]any)["email"] != "ada@example.com" || id["userId"] != "u1" {
		t.Errorf("identify %v", id)
	}
	fw := body.Batch[1]
	if fw["event"] != "Order Completed" || fw["messageId"] != "m1" || fw["userId"] != "u1" || fw["anonymousId"] != "a9" ||
		fw["context"].(map[string]any)["traits"].(map[string]any)["email"] != "ada@example.com" || fw["context"].(map[string]any)["ip"] != "1.2.3.4" {
		t.Errorf("forwarded %v", fw)
	}
	_ = dest
}
