package bench

import (
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// arrival is one verified webhook delivery.
type arrival struct {
	WebhookID string
	Event     string
	UserID    string
	Audience  string
	At        time.Time
}

// receiver is a marketing tool's endpoint: it verifies Standard Webhooks signatures with the
// reference library and records what arrived.
type receiver struct {
	name   string
	mu     sync.Mutex
	wh     *standardwebhooks.Webhook
	got    []arrival
	bad    int
	unread int
}

func (rc *receiver) setSecret(secret string) error {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return err
	}
	rc.mu.Lock()
	rc.wh = wh
	rc.mu.Unlock()
	return nil
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.wh == nil || rc.wh.Verify(body, r.Header) != nil {
		rc.bad++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var msgs []struct {
		Event      string `json:"event"`
		UserID     string `json:"userId"`
		Properties struct {
			AudienceKey string `json:"audience_key"`
		} `json:"properties"`
	}
	var one struct {
		Batch json.RawMessage `json:"batch"`
	}
	if json.Unmarshal(body, &one) == nil && len(one.Batch) > 0 {
		_ = json.Unmarshal(one.Batch, &msgs)
	} else {
		msgs = msgs[:0]
		var m struct {
			Event      string `json:"event"`
			UserID     string `json:"userId"`
			Properties struct {
				AudienceKey string `json:"audience_key"`
			} `json:"properties"`
		}
		if json.Unmarshal(body, &m) != nil {
			rc.unread++
		}
		msgs = append(msgs, m)
	}
	for _, m := range msgs {
		rc.got = append(rc.got, arrival{WebhookID: r.Header.Get("webhook-id"), Event: m.Event, UserID: m.UserID, Audience: m.Properties.AudienceKey, At: at})
	}
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) snapshot() ([]arrival, int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]arrival(nil), rc.got...), rc.bad
}
