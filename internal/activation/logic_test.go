package activation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/activations"
	"github.com/serverless-cdp/cdp/internal/deadletter"
	"github.com/serverless-cdp/cdp/internal/destination"
	"github.com/serverless-cdp/cdp/internal/webhook"
)

// Pure tests of the delivery logic: no store, no HTTP.

func TestClassifyAndRetrySchedule(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	d := NewWithStore(NewMemStore(), NewMemBadRecords(), nil, nil, Config{})
	retryAfter := http.Header{"Retry-After": []string{"3600"}}
	cases := []struct {
		name    string
		resp    webhook.Response
		err     error
		retries int
		status  string
		next    time.Duration // wait before the next attempt (retrying)
		gone    bool
		attempt bool
		msg     string
	}{
		{"2xx", webhook.Response{StatusCode: 204}, nil, 0, StatusDelivered, 0, false, true, ""},
		{"503 first", webhook.Response{StatusCode: 503}, nil, 0, StatusRetrying, DefaultSchedule[0], false, true, "HTTP 503"},
		{"503 fourth", webhook.Response{StatusCode: 503}, nil, 3, StatusRetrying, DefaultSchedule[3], false, true, "HTTP 503"},
		{"429 Retry-After beats the step", webhook.Response{StatusCode: 429, Header: retryAfter}, nil, 0, StatusRetrying, time.Hour, false, true, "HTTP 429"},
		{"408", webhook.Response{StatusCode: 408}, nil, 1, StatusRetrying, DefaultSchedule[1], false, true, "HTTP 408"},
		{"last step spent", webhook.Response{StatusCode: 500, Body: []byte("boom")}, nil, len(DefaultSchedule), StatusDead, 0, false, true, "gave up after 9 retries: HTTP 500: boom"},
		{"410", webhook.Response{StatusCode: 410}, nil, 0, StatusDead, 0, true, true, "HTTP 410"},
		{"400", webhook.Response{StatusCode: 400}, nil, 0, StatusDead, 0, false, true, "HTTP 400"},
		{"301", webhook.Response{StatusCode: 301}, nil, 0, StatusDead, 0, false, true, "(redirects are not followed)"},
		{"connection error", webhook.Response{}, errors.New("connection refused"), 0, StatusRetrying, DefaultSchedule[0], false, true, "connection refused"},
		{"refused address", webhook.Response{}, fmt.Errorf("dial: %w", webhook.ErrForbiddenAddress), 0, StatusDead, 0, false, true, "dial"},
		{"cannot sign", webhook.Response{}, fmt.Errorf("%w: sign", errPermanent), 0, StatusDead, 0, false, false, "sign"},
	}
	for _, c := range cases {
		o, gone := d.classify(c.resp, c.err, now, c.retries)
		if o.status != c.status || gone != c.gone || o.attempted != c.attempt || !strings.Contains(o.errMsg, c.msg) {
			t.Errorf("%s: %+v gone=%v", c.name, o, gone)
		}
		if c.status == StatusRetrying && o.nextAt.Sub(now) != c.next {
			t.Errorf("%s: next attempt after %v, want %v", c.name, o.nextAt.Sub(now), c.next)
		}
	}
	long := webhook.Response{StatusCode: 500, Body: []byte(strings.Repeat("é", 300))}
	if o, _ := d.classify(long, nil, now, 0); len(o.errMsg) > 220 || !strings.HasPrefix(o.errMsg, "HTTP 500: é") {
		t.Errorf("long body: %d bytes %q", len(o.errMsg), o.errMsg[:20])
	}
}

func TestLanes(t *testing.T) {
	var jobs []*job
	for i, p := range []string{"a", "b", "a", "", "b", "a", ""} {
		jobs = append(jobs, &job{recordID: fmt.Sprintf("r%d", i), profileID: p})
	}
	ids := func(ls [][]*job) string {
		var out []string
		for _, l := range ls {
			var ids []string
			for _, j := range l {
				ids = append(ids, j.recordID)
			}
			out = append(out, strings.Join(ids, ","))
		}
		return strings.Join(out, " | ")
	}
	if got := ids(lanes(jobs, 1)); got != "r0,r2,r5 | r1,r4 | r3 | r6" {
		t.Errorf("one lane per profile, in order; queued jobs alone: %s", got)
	}
	if got := ids(lanes(jobs, 3)); got != "r0,r1,r2 | r3,r4,r5 | r6" {
		t.Errorf("batching: one lane per request: %s", got)
	}
}

func TestBreaker(t *testing.T) {
	var b breaker
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	if b.isOpen("d", now) {
		t.Fatal("open before any timeout")
	}
	b.open("d", now.Add(30*time.Second))
	if !b.isOpen("d", now.Add(29*time.Second)) || b.isOpen("d", now.Add(30*time.Second)) || b.isOpen("other", now) {
		t.Fatal("cooldown window")
	}
	b.close("d")
	if b.isOpen("d", now) {
		t.Fatal("closed after a delivery")
	}
}

func TestPlanBudgets(t *testing.T) {
	d := NewWithStore(NewMemStore(), NewMemBadRecords(), nil, nil, Config{Reserve: 2 * time.Second, InBatchWindow: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	p := d.planFor(ctx, true)
	if !p.mayClaim() || p.mayAttempt(time.Second) || !p.mayAttempt(100*time.Millisecond) {
		t.Fatalf("0.5 s left before the reserve: %+v", p)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), time.Second)
	defer cancel2()
	if p := d.planFor(ctx2, true); p.mayClaim() || p.mayAttempt(0) {
		t.Fatal("inside the reserve: nothing may start")
	}
	if p := d.planFor(context.Background(), false); !p.mayClaim() || !p.mayAttempt(time.Hour) || p.budget.StopAt().After(time.Now().Add(50*time.Second)) {
		t.Fatal("no deadline: Tick's own budget only")
	}
}

func TestPayloadShapesAndWebhookIDs(t *testing.T) {
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	dest := destination.Destination{ID: "dst_1", Subscriptions: destination.Subscriptions{Audiences: []string{"vip"}, Traits: []string{"ltv"}}}
	rec := activations.Record{ID: "rec_1", Kind: activations.KindAudienceExited, UserID: "u1", Email: "ada@example.com",
		Audience: &activations.Audience{ID: "aud_1", Key: "vip"}, OccurredAt: at}
	b, ok, err := Payload(rec, dest, "spc")
	var m map[string]any
	if err != nil || !ok || json.Unmarshal(b, &m) != nil || m["event"] != EventAudienceExited ||
		m["properties"].(map[string]any)["vip"] != false || m["timestamp"] != "2025-01-02T03:04:05Z" {
		t.Fatalf("exited: %s %v %v", b, ok, err)
	}
	rec.Audience.Key, rec.Audience.ID = "other", "aud_2"
	if _, ok, _ := Payload(rec, dest, "spc"); ok {
		t.Fatal("unsubscribed audience sent")
	}
	tr := activations.Record{ID: "rec_2", Kind: activations.KindTraitsChanged, Traits: map[string]json.RawMessage{"visits": json.RawMessage(`1`)}}
	if _, ok, _ := Payload(tr, dest, "spc"); ok {
		t.Fatal("unsubscribed trait sent")
	}
	if _, _, err := Payload(activations.Record{ID: "x", Kind: "nope"}, dest, "spc"); err == nil {
		t.Fatal("unknown kind accepted")
	}
	if WebhookID("rec_1", "dst_1") != WebhookID("rec_1", "dst_1") || WebhookID("rec_1", "dst_1") == WebhookID("rec_1", "dst_2") {
		t.Fatal("webhook-id must be stable per (record, destination)")
	}
	if batchWebhookID("d", []string{"b", "a"}) != batchWebhookID("d", []string{"a", "b"}) {
		t.Fatal("batch webhook-id must not depend on order")
	}
}

// TestReplayKeptRecord: a kept record that is still undeliverable stays (an error); one that
// can now be delivered is delivered once, under its stable webhook-id.
func TestReplayKeptRecord(t *testing.T) {
	e := newEnv(t, webhook.Policy{AllowLoopback: true})
	r := newReceiver(t)
	dest := e.dest(r, destination.Spec{})
	long, _ := json.Marshal(audienceRecord(strings.Repeat("x", MaxRecordIDBytes+1), activations.KindAudienceEntered))
	if err := e.d.Replay(context.Background(), deadletter.Entry{ID: "e1", Kind: KindRecord, Payload: long}); err == nil {
		t.Fatal("an undeliverable record replayed without an error")
	}
	good, _ := json.Marshal(audienceRecord("rec_1", activations.KindAudienceEntered))
	if err := e.d.Replay(context.Background(), deadletter.Entry{ID: "e2", Kind: KindMessage, Payload: good}); err == nil {
		t.Fatal("a kept message replayed")
	}
	for range 2 {
		if err := e.d.Replay(context.Background(), deadletter.Entry{ID: "e3", Kind: KindRecord, Payload: good}); err != nil {
			t.Fatal(err)
		}
	}
	got := r.delivered()
	if len(got) != 1 || got[0].header.Get("webhook-id") != WebhookID("rec_1", dest.ID) {
		t.Fatalf("replayed twice: %d deliveries", len(got))
	}
}
