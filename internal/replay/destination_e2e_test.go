package replay

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/serverless-cdp/cdp/internal/activation"
	"github.com/serverless-cdp/cdp/internal/destination"
	"github.com/serverless-cdp/cdp/internal/stream"
	"github.com/serverless-cdp/cdp/internal/webhook"
)

// hook is a webhook receiver that verifies every signature with the Standard Webhooks
// reference library and keeps the messageIds it accepted.
type hook struct {
	t      *testing.T
	mu     sync.Mutex
	secret string
	got    []string
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	wh, err := standardwebhooks.NewWebhook(h.secret)
	if err == nil {
		err = wh.Verify(body, r.Header)
	}
	if err != nil {
		h.t.Errorf("signature: %v", err)
		w.WriteHeader(401)
		return
	}
	var p struct {
		MessageID string `json:"messageId"`
	}
	_ = json.Unmarshal(body, &p)
	h.got = append(h.got, p.MessageID)
}

func (h *hook) ids() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.got)
}

// activationStream hands what is put on the activations stream to the activation stage, as a
// Kinesis batch.
type activationStream struct{ d *activation.Deliverer }

func (s activationStream) Put(ctx context.Context, recs []stream.Record) error {
	var ev events.KinesisEvent
	for i, r := range recs {
		ev.Records = append(ev.Records, events.KinesisEventRecord{EventSource: "aws:kinesis",
			Kinesis: events.KinesisRecord{Data: r.Data, PartitionKey: r.PartitionKey, SequenceNumber: strconv.Itoa(i + 1)}})
	}
	resp, err := s.d.HandleKinesis(ctx, ev)
	if err == nil && len(resp.BatchItemFailures) > 0 {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// TestReplayOneDayIntoANewDestination is the done-when: two days archived (a folder),
// a destination created afterwards, one day replayed into it: it receives exactly that day's
// matching events, once each, signed; another destination subscribed to the same events
// receives nothing; replaying the day again delivers nothing new.
func TestReplayOneDayIntoANewDestination(t *testing.T) {
	e := newEnv(t, twoDays(t))
	for _, u := range []string{"u1", "u2", "u3", "u4", "u5"} {
		e.profs.of["user_id:"+u] = "prof_" + u
	}
	dsvc := destination.NewServiceWith(destination.NewMemStore(), destination.WithPolicy(webhook.Policy{AllowLoopback: true}))
	deliverer := activation.NewWithStore(activation.NewMemStore(), activation.NewMemBadRecords(), dsvc,
		webhook.NewClient(webhook.Options{Policy: webhook.Policy{AllowLoopback: true}}), activation.Config{Timeout: 5 * time.Second})
	e.opts.Activations, e.opts.Destinations = activationStream{deliverer}, dsvc
	newDest := func() (destination.Destination, *hook) {
		h := &hook{t: t}
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		d, secret, err := dsvc.Create(context.Background(), destination.Spec{Name: "warehouse", URL: srv.URL,
			Subscriptions: destination.Subscriptions{Events: []destination.EventFilter{{Type: "track", Name: "Order Completed"}}}})
		if err != nil {
			t.Fatal(err)
		}
		h.secret = secret
		return d, h
	}
	_, other := newDest()
	dest, h := newDest()
	svc := NewService(e.runner(), ServiceOptions{InlineBudget: 10 * time.Second})
	in := Input{From: day1, To: day2, Target: Target{Type: TargetDestination, DestinationID: dest.ID}}
	j, err := svc.Submit(context.Background(), in)
	if err != nil || j.Status != StatusCompleted {
		t.Fatalf("submit: %+v %v", j, err)
	}
	// Day 1's Order Completed events (m5 arrived a second before midnight, archived under day 2).
	want := []string{"m1", "m4", "m5", "m7", "m8"}
	if got := h.ids(); !slices.Equal(slices.Sorted(slices.Values(got)), want) { // profiles are delivered concurrently
		t.Fatalf("delivered %v, want %v", got, want)
	}
	if j.Counts.Sent != 5 || j.Counts.Skipped[SkipFiltered] != 3 || j.Counts.Skipped[SkipBadLine] != 1 {
		t.Fatalf("counts %s", countsString(j.Counts))
	}
	if got := other.ids(); len(got) != 0 {
		t.Fatalf("the other destination received %v", got)
	}
	if _, err := svc.Submit(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	if got := h.ids(); len(got) != len(want) {
		t.Fatalf("replayed again: %d deliveries, want still %d", len(got), len(want))
	}
	in.Target.DestinationID = "dst_nope"
	if _, err := svc.Submit(context.Background(), in); !IsValidation(err) {
		t.Fatalf("unknown destination: %v", err)
	}
}
