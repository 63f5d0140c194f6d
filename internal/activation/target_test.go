package activation

import (
	"context"
	"testing"

	"github.com/serverless-cdp/cdp/internal/destination"
	"github.com/serverless-cdp/cdp/internal/webhook"
)

// TestDestinationIDRecordReachesOnlyThatDestination: a record naming a destination (a replay
// into one destination) is delivered to it alone, even though another destination subscribes
// to the same events; it still needs the named destination's subscription; a record naming
// none goes to both.
func TestDestinationIDRecordReachesOnlyThatDestination(t *testing.T) {
	e := newEnv(t, webhook.Policy{AllowLoopback: true})
	ra, rb, rc := newReceiver(t), newReceiver(t), newReceiver(t)
	all := destination.Subscriptions{Events: []destination.EventFilter{{Type: "track"}}}
	a := e.dest(ra, destination.Spec{Subscriptions: all})
	b := e.dest(rb, destination.Spec{Subscriptions: all})
	c := e.dest(rc, destination.Spec{Subscriptions: destination.Subscriptions{Events: []destination.EventFilter{{Type: "page"}}}})

	toB := eventRecord("r1", "prof_1", "")
	toB.DestinationID = b.ID
	toC := eventRecord("r2", "prof_1", "") // a track event: c subscribes to pages only
	toC.DestinationID = c.ID
	live := eventRecord("r3", "prof_1", "")
	e.handle(kinesisEvent(t, toB, toC, live))

	ids := func(r *receiver) []string {
		var out []string
		for _, g := range r.delivered() {
			out = append(out, g.header.Get("webhook-id"))
		}
		return out
	}
	if got := ids(ra); len(got) != 1 || got[0] != WebhookID(live.ID, a.ID) {
		t.Fatalf("destination a got %v, want only the untargeted record", got)
	}
	if got := ids(rb); len(got) != 2 || got[0] != WebhookID(toB.ID, b.ID) || got[1] != WebhookID(live.ID, b.ID) {
		t.Fatalf("destination b got %v, want its targeted record and the untargeted one", got)
	}
	if got := ids(rc); len(got) != 0 {
		t.Fatalf("destination c got %v, want nothing (not subscribed)", got)
	}
	if _, found, _ := e.d.deliveries.Delivery(context.Background(), a.ID, toB.ID); found {
		t.Fatal("a delivery of b's record was recorded for a")
	}
}
