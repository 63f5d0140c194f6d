package activation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/serverless-cdp/cdp/internal/destination"
	"github.com/serverless-cdp/cdp/internal/privacy"
	"github.com/serverless-cdp/cdp/internal/webhook"
)

// Notice outcome statuses (privacy.NoticeOutcome.Status).
const (
	NoticeDelivered = "delivered"
	NoticeFailed    = "failed" // retryable: the next run of the request sends it again
	NoticeDead      = "dead"   // refused for good
)

// noticeBody is the Privacy Request webhook's body. Segment has no public equivalent; the
// shape is documented in the README (Activation) and the OpenAPI document.
type noticeBody struct {
	Type        string             `json:"type"` // always "privacy_request"
	RequestID   string             `json:"requestId"`
	RequestType string             `json:"requestType"`
	Identifiers []noticeIdentifier `json:"identifiers"`
	Timestamp   string             `json:"timestamp"`
}

type noticeIdentifier struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// NoticeWebhookID is the webhook-id of a request's notice: the same on every retry.
func NoticeWebhookID(requestID string) string { return "privacy-" + requestID }

// Notify sends the signed Privacy Request notice to every enabled destination subscribed to
// privacy notices (subscriptions.privacy), concurrently, each bounded by its timeout and by
// ctx, through the same SSRF-safe client and signing as deliveries. It stores nothing (the
// identifiers are in no delivery item, dead letter or log) and returns one outcome per
// destination; an outcome's error never quotes the receiver's answer.
func (d *Deliverer) Notify(ctx context.Context, n privacy.Notice) ([]privacy.NoticeOutcome, error) {
	dests, err := d.dests.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("notify: load destinations: %w", err)
	}
	body, err := noticeJSON(n)
	if err != nil {
		return nil, err
	}
	var (
		mu  sync.Mutex
		out []privacy.NoticeOutcome
		g   errgroup.Group
	)
	g.SetLimit(8)
	for _, dest := range dests {
		if !dest.Enabled || !dest.Subscriptions.Privacy {
			continue
		}
		g.Go(func() error {
			o := d.notifyOne(ctx, dest, n.RequestID, body)
			mu.Lock()
			out = append(out, o)
			mu.Unlock()
			return nil
		})
	}
	_ = g.Wait()
	for _, o := range out {
		d.log.InfoContext(ctx, "privacy notice", "destination", o.DestinationID, "status", o.Status)
	}
	return out, nil
}

func noticeJSON(n privacy.Notice) ([]byte, error) {
	nb := noticeBody{Type: "privacy_request", RequestID: n.RequestID, RequestType: n.Type,
		Identifiers: make([]noticeIdentifier, 0, len(n.Identifiers)), Timestamp: n.At.UTC().Format(time.RFC3339Nano)}
	for _, id := range n.Identifiers {
		t, v, _ := strings.Cut(id, ":")
		nb.Identifiers = append(nb.Identifiers, noticeIdentifier{Type: t, Value: v})
	}
	b, err := json.Marshal(nb)
	if err != nil {
		return nil, fmt.Errorf("notify: encode notice: %w", err)
	}
	return b, nil
}

// notifyOne sends the notice to one destination: 2xx delivered; 408, 429, 5xx, timeouts and
// connection errors failed (retryable); refused addresses, 3xx and other 4xx dead.
func (d *Deliverer) notifyOne(ctx context.Context, dest destination.Destination, requestID string, body []byte) privacy.NoticeOutcome {
	o := privacy.NoticeOutcome{DestinationID: dest.ID}
	now := d.cfg.Now()
	h := http.Header{}
	for k, v := range dest.Headers {
		h.Set(k, v)
	}
	if err := webhook.Sign(h, dest.Signing, NoticeWebhookID(requestID), now, body, dest.LiveSecrets(now)); err != nil {
		o.Status, o.Error = NoticeDead, "sign: "+err.Error()
		return o
	}
	resp, err := d.client.Do(ctx, webhook.Request{URL: dest.URL, Body: body, Header: h, Timeout: dest.Timeout(d.cfg.Timeout)})
	code := resp.StatusCode
	switch {
	case err != nil && errors.Is(err, webhook.ErrForbiddenAddress):
		o.Status, o.Error = NoticeDead, err.Error()
	case err != nil:
		o.Status, o.Error = NoticeFailed, err.Error()
	case code >= 200 && code < 300:
		o.Status = NoticeDelivered
	case code == http.StatusTooManyRequests || code == http.StatusRequestTimeout || code >= 500:
		o.Status, o.Error = NoticeFailed, fmt.Sprintf("HTTP %d", code)
	default:
		o.Status, o.Error = NoticeDead, fmt.Sprintf("HTTP %d", code)
	}
	return o
}
