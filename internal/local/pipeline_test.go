//go:build integration

package local_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	analytics "github.com/segmentio/analytics-go/v3"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// call makes an authenticated JSON request to the local stack and decodes the answer.
func call(t *testing.T, method, url, auth string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %d %s: %v", method, url, resp.StatusCode, raw, err)
		}
	}
	return resp.StatusCode
}

// receiver is a marketing tool's webhook endpoint that verifies Standard Webhooks signatures
// with the reference library.
type receiver struct {
	mu     sync.Mutex
	secret string
	got    []map[string]any
	ids    []string
	bad    int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	wh, err := standardwebhooks.NewWebhook(rc.secret)
	if err != nil || wh.Verify(body, r.Header) != nil {
		rc.bad++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var msg map[string]any
	json.Unmarshal(body, &msg)
	rc.got = append(rc.got, msg)
	rc.ids = append(rc.ids, r.Header.Get("webhook-id"))
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) snapshot() ([]map[string]any, int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]map[string]any(nil), rc.got...), rc.bad
}

func eventually(t *testing.T, what string, timeout time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestPipelineEndToEnd drives every stage through public interfaces only: the admin API
// configures an audience and a webhook destination, analytics-go sends an anonymous visit, a
// login and a purchase, the Profile API shows one merged profile, and the receiver gets a
// signed "Audience Entered" exactly once.
func TestPipelineEndToEnd(t *testing.T) {
	stack, _, writeKey := startStack(t)
	bearer := "Bearer " + adminToken
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()

	var created struct {
		Destination struct{ ID string } `json:"destination"`
		Secret      string              `json:"secret"`
	}
	if st := call(t, "POST", stack.URL+"/admin/v1/destinations", bearer, map[string]any{
		"name": "crm", "url": srv.URL + "/hook",
		"subscriptions": map[string]any{"audiences": []string{"*"}},
	}, &created); st != 201 || !strings.HasPrefix(created.Secret, "whsec_") {
		t.Fatalf("create destination: %d %+v", st, created)
	}
	rc.mu.Lock()
	rc.secret = created.Secret
	rc.mu.Unlock()
	if st := call(t, "POST", stack.URL+"/admin/v1/audiences", bearer, map[string]any{
		"key": "buyers", "name": "Buyers",
		"condition": map[string]any{"event": map[string]any{"name": "Order Completed", "count": map[string]any{"op": "at_least", "n": 1}, "within": map[string]any{"days": 30}}},
	}, nil); st != 201 && st != 200 {
		t.Fatalf("create audience: %d", st)
	}
	if st := call(t, "POST", stack.URL+"/admin/v1/computed-traits", bearer, map[string]any{
		"key": "total_revenue", "name": "Total revenue", "kind": "sum",
		"event": map[string]any{"name": "Order Completed"}, "property": "revenue",
	}, nil); st != 201 && st != 200 {
		t.Fatalf("create computed trait: %d", st)
	}
	if st := call(t, "POST", stack.URL+"/admin/v1/audiences", "Bearer wrong-token", map[string]any{"key": "x"}, nil); st != 401 {
		t.Fatalf("admin API without a valid token: %d", st)
	}

	client, err := analytics.NewWithConfig(writeKey, analytics.Config{Endpoint: stack.URL, BatchSize: 1, Interval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(client.Enqueue(analytics.Page{MessageId: "p1", AnonymousId: "anon-42", Name: "Pricing", Timestamp: now.Add(-3 * time.Minute)}))
	must(client.Enqueue(analytics.Identify{MessageId: "i1", AnonymousId: "anon-42", UserId: "user-42", Timestamp: now.Add(-2 * time.Minute),
		Traits: analytics.NewTraits().SetEmail("Grace@Example.com").Set("plan", "pro")}))
	must(client.Enqueue(analytics.Track{MessageId: "t1", UserId: "user-42", Event: "Order Completed", Timestamp: now.Add(-time.Minute),
		Properties: analytics.NewProperties().SetRevenue(120)}))
	must(client.Close())

	// The Profile API finds one merged profile by any identifier.
	basic := "Basic " + basicToken(adminToken)
	base := stack.URL + "/v1/spaces/default/collections/users/profiles/"
	var traits struct {
		Traits map[string]any `json:"traits"`
	}
	eventually(t, "traits in the Profile API", 20*time.Second, func() bool {
		return call(t, "GET", base+"user_id:user-42/traits", basic, nil, &traits) == 200 && traits.Traits["plan"] == "pro"
	})
	if traits.Traits["email"] == nil {
		t.Fatalf("traits: %v", traits.Traits)
	}
	var evs struct {
		Data []map[string]any `json:"data"`
	}
	eventually(t, "three events on the merged profile", 20*time.Second, func() bool {
		return call(t, "GET", base+"anonymous_id:anon-42/events", basic, nil, &evs) == 200 && len(evs.Data) == 3
	})
	var ext struct {
		Data []struct{ Type, ID string } `json:"data"`
	}
	call(t, "GET", base+"email:grace@example.com/external_ids", basic, nil, &ext)
	types := map[string]string{}
	for _, e := range ext.Data {
		types[e.Type] = e.ID
	}
	if types["user_id"] != "user-42" || types["anonymous_id"] != "anon-42" || types["email"] != "grace@example.com" {
		t.Fatalf("external ids: %+v", ext.Data)
	}
	if st := call(t, "GET", base+"user_id:nobody/traits", basic, nil, nil); st != 404 {
		t.Fatalf("unknown profile: %d", st)
	}
	if st := call(t, "GET", base+"user_id:user-42/traits", "Basic "+basicToken("wrong"), nil, nil); st != 401 {
		t.Fatalf("Profile API with a bad token: %d", st)
	}

	// The purchase puts the profile in the audience; the receiver gets one signed message.
	eventually(t, "Audience Entered at the webhook", 30*time.Second, func() bool {
		got, _ := rc.snapshot()
		return len(got) >= 1
	})
	time.Sleep(time.Second) // a duplicate, if any, would arrive now
	got, bad := rc.snapshot()
	if bad != 0 || len(got) != 1 {
		t.Fatalf("receiver got %d messages (%d with bad signatures): %v", len(got), bad, got)
	}
	// Segment's Profile API serves audiences and computed traits among the traits, by class.
	var classed struct {
		Traits map[string]any `json:"traits"`
	}
	eventually(t, "computed trait in the Profile API", 10*time.Second, func() bool {
		return call(t, "GET", base+"user_id:user-42/traits?class=computed_trait", basic, nil, &classed) == 200 && classed.Traits["total_revenue"] == 120.0
	})
	if _, ok := classed.Traits["plan"]; ok || classed.Traits["buyers"] != nil {
		t.Fatalf("class=computed_trait: %v", classed.Traits)
	}
	classed.Traits = nil
	if call(t, "GET", base+"user_id:user-42/traits?class=audience", basic, nil, &classed); classed.Traits["buyers"] != true || len(classed.Traits) != 1 {
		t.Fatalf("class=audience: %v", classed.Traits)
	}
	classed.Traits = nil
	if call(t, "GET", base+"user_id:user-42/traits?class=user", basic, nil, &classed); classed.Traits["plan"] != "pro" || classed.Traits["buyers"] != nil || classed.Traits["total_revenue"] != nil {
		t.Fatalf("class=user: %v", classed.Traits)
	}

	m := got[0]
	props, _ := m["properties"].(map[string]any)
	if m["event"] != "Audience Entered" || m["userId"] != "user-42" || props["audience_key"] != "buyers" || props["buyers"] != true {
		t.Fatalf("webhook payload: %v", m)
	}
}

func basicToken(user string) string {
	return b64(user + ":")
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
