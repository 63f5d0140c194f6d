package activation

import (
	"encoding/json"
	"github.com/serverless-cdp/cdp/internal/activations"
	"net/http"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/destination"
	"github.com/serverless-cdp/cdp/internal/tracking"
	"github.com/serverless-cdp/cdp/internal/webhook"
)

// BenchmarkPayloadAndSign is the activation hot path per message, pure: build the Segment-shaped
// payload of a record for a destination, derive the stable webhook-id, and sign the body
// (Standard Webhooks HMAC-SHA256, or Segment's X-Signature).
func BenchmarkPayloadAndSign(b *testing.B) {
	secret := webhook.NewSecret()
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	records := map[string]activations.Record{
		"audience_entered": {ID: "rec_1", Kind: activations.KindAudienceEntered, ProfileID: "prof_1", UserID: "user-42", AnonymousID: "anon-42",
			Email: "grace@example.com", Audience: &activations.Audience{ID: "aud_1", Key: "big_spenders", Name: "Big spenders"}, OccurredAt: at},
		"traits_changed": {ID: "rec_2", Kind: activations.KindTraitsChanged, ProfileID: "prof_1", UserID: "user-42", Email: "grace@example.com",
			Traits: map[string]json.RawMessage{"order_count": json.RawMessage(`3`), "total_revenue": json.RawMessage(`412.5`)}, OccurredAt: at},
		"event": {ID: "msg_3", Kind: activations.KindEvent, ProfileID: "prof_1", UserID: "user-42", Email: "grace@example.com", OccurredAt: at,
			Event: &tracking.Message{Type: tracking.TypeTrack, MessageID: "msg_3", UserID: "user-42", Event: "Order Completed", Timestamp: at,
				Properties: json.RawMessage(`{"revenue":120,"currency":"USD","products":[{"sku":"a-1","price":60},{"sku":"b-2","price":60}]}`),
				Context:    json.RawMessage(`{"library":{"name":"analytics-go","version":"3.3.0"},"ip":"203.0.113.9"}`)}},
	}
	for _, mode := range []string{webhook.ModeStandard, webhook.ModeSegment} {
		d := destination.Destination{ID: "dst_1", Name: "crm", Enabled: true, Signing: mode, BatchSize: 1,
			Subscriptions: destination.Subscriptions{Audiences: []string{"*"}, Traits: []string{"*"}, Events: []destination.EventFilter{{Type: tracking.TypeTrack, Name: "Order Completed"}}}}
		for name, rec := range records {
			b.Run(mode+"/"+name, func(b *testing.B) {
				if _, ok, err := Payload(rec, d, "default"); err != nil || !ok {
					b.Fatalf("payload: ok=%v err=%v", ok, err)
				}
				b.ReportAllocs()
				h := http.Header{}
				for i := 0; i < b.N; i++ {
					body, _, err := Payload(rec, d, "default")
					if err != nil {
						b.Fatal(err)
					}
					if err := webhook.Sign(h, d.Signing, WebhookID(rec.ID, d.ID), at, body, []string{secret}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
