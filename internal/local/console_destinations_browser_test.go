//go:build integration

package local_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	analytics "github.com/segmentio/analytics-go/v3"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// flakyReceiver is a webhook endpoint that verifies every request's Standard Webhooks
// signature. While failing it answers a message's first request 500 and every later one 400
// (a refusal that is not retried); otherwise 204, recording the message.
type flakyReceiver struct {
	mu      sync.Mutex
	secret  string
	failing bool
	seen    map[string]int // webhook-id -> requests
	got     []string       // messageIds accepted
	bad     int            // requests with a wrong signature
}

func (f *flakyReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	wh, err := standardwebhooks.NewWebhook(f.secret)
	if err != nil || wh.Verify(body, r.Header) != nil {
		f.bad++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	id := r.Header.Get("webhook-id")
	f.seen[id]++
	if f.failing {
		if f.seen[id] == 1 {
			http.Error(w, "temporarily unavailable", http.StatusInternalServerError)
			return
		}
		http.Error(w, "rejected: schema v2 required", http.StatusBadRequest)
		return
	}
	var msg struct {
		MessageID string `json:"messageId"`
	}
	json.Unmarshal(body, &msg)
	f.got = append(f.got, msg.MessageID)
	w.WriteHeader(http.StatusNoContent)
}

func (f *flakyReceiver) set(secret string, failing bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.secret, f.failing = secret, failing
}

func (f *flakyReceiver) received() ([]string, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.got...), f.bad
}

// deliveryStatusIn reads the status badge of a record's row in the page's delivery log.
func (c *consoleSession) deliveryStatusIn(record string) string {
	c.t.Helper()
	js := fmt.Sprintf(`(() => { const tr = [...document.querySelectorAll("#deliveries tbody tr")].find(tr => tr.textContent.includes(%q));
		return tr ? tr.querySelector(".badge").textContent : ""; })()`, record)
	return run(c, chromedp.Evaluate[string](js))
}

// TestConsoleDestinations: a webhook destination created in the console (its signing secret
// shown once) receives signed events; when the receiver answers 500 and then 400 the message
// goes to the dead letters, which the console shows with the receiver's reason; once the
// receiver works again, Redrive in the console delivers it (the receiver verifies the
// signature with the secret the console showed) and the console's delivery log says delivered.
func TestConsoleDestinations(t *testing.T) {
	c := newConsoleSession(t)
	rc := &flakyReceiver{seen: map[string]int{}}
	hook := httptest.NewServer(rc)
	t.Cleanup(hook.Close)

	c.open("/console/destinations/new")
	c.do(chromedp.SendKeys(chromedp.ID("d-name"), "crm-webhook"), chromedp.SendKeys(chromedp.ID("d-url"), hook.URL+"/hook"),
		chromedp.SetValue(chromedp.ID("d-events"), `[{"type":"track","name":"Console Probe"}]`),
		chromedp.Click(chromedp.CSS(`#page button[type=submit].primary`)), chromedp.WaitVisible(chromedp.ID("signing-secret")))
	secret := strings.TrimSpace(c.text("#signing-secret"))
	if !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("signing secret %q", secret)
	}
	loc := run(c, chromedp.Location())
	if !strings.Contains(loc, "/console/destinations/dst_") {
		t.Fatalf("after create the address is %s, not the destination's page", loc)
	}
	destPath := loc[strings.Index(loc, "/console/"):]
	rc.set(secret, false)

	send := func(ids ...string) {
		var msgs []analytics.Message
		for _, id := range ids {
			msgs = append(msgs, analytics.Track{MessageId: id, UserId: "console-dest-user", Event: "Console Probe"})
		}
		scnSend(t, c.stack.URL, c.writeKey, 1, msgs...)
	}
	send("console-ok-1", "console-ok-2", "console-ok-3")
	eventually(t, "three signed deliveries", 60*time.Second, func() bool { got, _ := rc.received(); return len(got) == 3 })

	// The receiver fails: 500 (retried 5 s later), then 400 (not retried): a dead letter.
	rc.set(secret, true)
	send("console-dead-1")
	c.open(destPath)
	c.waitText("#page", "rejected: schema v2 required", true, 90*time.Second)
	if got := c.text("#dead-letters"); !strings.Contains(got, "HTTP 400") {
		t.Fatalf("dead letters: %q", got)
	}
	record := strings.TrimSpace(c.text("#dead-letters tbody code"))
	// The page reads the delivery log and then the dead letters: a view rendered while the
	// delivery was being dead-lettered can show the letter and the delivery still in flight.
	st := ""
	eventually(t, "the delivery log to show "+record+" dead", 30*time.Second, func() bool {
		if st = c.deliveryStatusIn(record); st != "dead" {
			c.open(destPath)
		}
		return st == "dead"
	})
	c.shot("destinations")
	rru, wru := c.cost(func() { c.open(destPath) })
	t.Logf("destination page view: %.2f RRU, %.2f WRU (4 deliveries, 1 dead letter)", rru, wru)
	lrru, lwru := c.cost(func() { c.open("/console/destinations") })
	t.Logf("destinations list view: %.2f RRU, %.2f WRU (1 destination)", lrru, lwru)
	if wru != 0 || lwru != 0 {
		t.Errorf("viewing wrote: %.2f, %.2f WRU", wru, lwru)
	}
	if got := c.text("#destinations"); !strings.Contains(got, "crm-webhook") || !strings.Contains(got, "75% delivered") {
		t.Fatalf("destinations list: %q", got)
	}
	deliveryCreateDestination(t, c.stack.URL, "second", hook.URL+"/second")
	l2rru, _ := c.cost(func() { c.open("/console/destinations") })
	t.Logf("destinations list view: %.2f RRU with 2 destinations (%.2f per destination)", l2rru, l2rru-lrru)

	// The receiver works again; Redrive in the console delivers the message, signed.
	rc.set(secret, false)
	c.open(destPath)
	c.do(chromedp.Click(chromedp.CSS(`button[aria-label="Redrive ` + record + `"]`)))
	c.waitText("p.flash", "1 dead letter(s) queued", false, 10*time.Second)
	eventually(t, "the redriven message at the receiver", 60*time.Second, func() bool {
		got, _ := rc.received()
		return len(got) == 4 && got[3] == "console-dead-1"
	})
	if _, bad := rc.received(); bad != 0 {
		t.Fatalf("%d requests had a wrong signature", bad)
	}
	deadline := time.Now().Add(30 * time.Second)
	for c.deliveryStatusIn(record) != "delivered" {
		if time.Now().After(deadline) {
			t.Fatalf("the delivery log shows %s as %q, not delivered", record, c.deliveryStatusIn(record))
		}
		c.do(chromedp.Click(chromedp.CSS(`#log-refresh`)), chromedp.WaitVisible(chromedp.ID("deliveries")))
		time.Sleep(250 * time.Millisecond) // the polling interval
	}
	c.waitText("#page", "No dead letters", false, 5*time.Second)

	// The secret rotated in the console, the previous one stopped at once: the next message is
	// signed with the new secret the console showed, once.
	c.do(chromedp.Click(chromedp.CSS(`section[aria-labelledby="state"] summary`)), chromedp.SetValue(chromedp.ID("d-grace"), "now"),
		chromedp.Click(chromedp.ID("rotate-secret")))
	c.waitText("p.flash", "New signing secret", false, 10*time.Second)
	newSecret := strings.TrimSpace(c.text("#signing-secret"))
	if newSecret == secret || !strings.HasPrefix(newSecret, "whsec_") {
		t.Fatalf("rotated secret %q", newSecret)
	}
	rc.set(newSecret, false)
	send("console-after-rotation")
	eventually(t, "a message signed with the rotated secret", 60*time.Second, func() bool {
		got, _ := rc.received()
		return len(got) == 5
	})
	if _, bad := rc.received(); bad != 0 {
		t.Fatalf("%d requests were not signed with the new secret", bad)
	}

	// Disabled in the console: the admin API says so and the list shows it.
	c.do(chromedp.Click(chromedp.ID("dest-disable")), chromedp.WaitVisible(chromedp.ID("dest-enable")))
	var d struct {
		Destination struct{ Enabled bool } `json:"destination"`
	}
	if st := call(t, "GET", c.stack.URL+"/admin/v1"+strings.TrimPrefix(destPath, "/console"), "Bearer "+adminToken, nil, &d); st != 200 || d.Destination.Enabled {
		t.Fatalf("after Disable the destination is %d enabled=%v", st, d.Destination.Enabled)
	}
	c.open("/console/destinations")
	if got := c.text("#destinations"); !strings.Contains(got, "disabled") {
		t.Fatalf("the list does not show the destination disabled: %q", got)
	}
}
