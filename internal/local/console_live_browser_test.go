//go:build integration

package local_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	analytics "github.com/segmentio/analytics-go/v3"
)

// sendTracks sends each track event with the real Segment Go library, one request each and in
// order (the client is closed, so flushed, after each).
func sendTracks(c *consoleSession, user string, msgs ...analytics.Track) {
	c.t.Helper()
	for _, m := range msgs {
		client, err := analytics.NewWithConfig(c.writeKey, analytics.Config{Endpoint: c.stack.URL, BatchSize: 1})
		if err != nil {
			c.t.Fatal(err)
		}
		m.UserId = user
		if err := client.Enqueue(m); err != nil {
			c.t.Fatal(err)
		}
		if err := client.Close(); err != nil {
			c.t.Fatal(err)
		}
	}
}

// trackWithKey posts one track call with the given write key and returns the status.
func trackWithKey(c *consoleSession, key, body string) int {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.stack.URL+"/v1/track", strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.SetBasicAuth(key, "")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitCounted waits until sel's text contains want. Ingest and the stages write their counts
// at the end of a request or batch at most every 10 s, so meanwhile it keeps sending a small
// valid event (each a chance to flush) and, if reload, reloads the page.
func waitCounted(c *consoleSession, sel, want string, reload bool) {
	c.t.Helper()
	waitUntil(c, sel, want, reload, func(s string) bool { return strings.Contains(s, want) })
}

// waitUntil is waitCounted with any condition on the text (what names it in a failure).
func waitUntil(c *consoleSession, sel, what string, reload bool, ok func(string) bool) string {
	c.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(c.ctx, 2*time.Second)
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		cancel()
		if err == nil && ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s never showed %s (last: %q, %v)", sel, what, s, err)
		}
		if st := trackWithKey(c, c.writeKey, `{"type":"track","event":"Ping","userId":"pinger"}`); st != 200 {
			c.t.Fatalf("ping: %d", st)
		}
		time.Sleep(time.Second) // the polling interval, not a wait for a result
		if reload {
			c.do(chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`main h1`)))
		}
	}
}

// TestConsoleLiveEvents: events sent with analytics-go appear on the Live events page by its
// own polling (no reload), newest first, with their payload; a request with a bad write key
// appears with its code and message and never its payload; the filter refuses an unknown
// source; auto-refresh pauses.
func TestConsoleLiveEvents(t *testing.T) {
	c := newConsoleSession(t)
	c.open("/console/live")
	sendTracks(c, "live-user",
		analytics.Track{MessageId: "live-msg-1", Event: "Signed Up", Properties: analytics.NewProperties().Set("plan", "trial")},
		analytics.Track{MessageId: "live-msg-2", Event: "Order Completed", Properties: analytics.NewProperties().SetRevenue(42.5)})
	if st := trackWithKey(c, "wk_not_a_key", `{"type":"track","event":"Secret","userId":"rejected-user-payload"}`); st != http.StatusUnauthorized {
		t.Fatalf("bad key: %d", st)
	}
	c.waitText(`#events`, "live-msg-2", false, 30*time.Second) // the page's own polling
	rows := c.text(`#events tbody`)
	if i1, i2 := strings.Index(rows, "live-msg-1"), strings.Index(rows, "live-msg-2"); i1 < 0 || i2 > i1 {
		t.Fatalf("events not newest first: %q", rows)
	}
	waitCounted(c, `#rejections`, "unauthorized", false)
	rej := c.text(`#rejections`)
	if !strings.Contains(rej, "invalid write key") || !strings.Contains(rej, "unknown") || strings.Contains(rej, "rejected-user-payload") {
		t.Fatalf("rejections: %q", rej)
	}

	// The page view's cost: the session check, the sources listing and the rejection samples;
	// the events come from the stream.
	rru, wru := c.cost(func() { c.open("/console/live"); c.waitText(`#events`, "live-msg-2", false, 10*time.Second) })
	// The window can also hold one of the page's 3-second polls (2.5 RRU) on a loaded machine.
	if wru != 0 || rru > 8 {
		t.Errorf("a Live events view cost %.2f RRU, %.2f WRU", rru, wru)
	}
	t.Logf("Live events: %.2f RRU, %.2f WRU per view", rru, wru)

	// Filtered to the dev source; the Order Completed payload opened stays open across refreshes.
	src := run(c, chromedp.Evaluate[string](`document.querySelector('#source option:nth-child(2)').value`))
	c.do(chromedp.SetValue(chromedp.ID("source"), src), chromedp.Submit(chromedp.ID("source")),
		chromedp.WaitVisible(chromedp.CSS(`#events`)))
	if loc := run(c, chromedp.Location()); !strings.Contains(loc, "source="+src) {
		t.Fatalf("the filter opened %s", loc)
	}
	const row = `[...document.querySelectorAll('#events tbody tr')].find(r => r.textContent.includes('live-msg-2'))`
	run(c, chromedp.Evaluate[bool](row+`.querySelector('summary').click() === undefined`))
	payload := run(c, chromedp.Evaluate[string](row+`.querySelector('pre').innerText`))
	if !strings.Contains(payload, `"messageId": "live-msg-2"`) || !strings.Contains(payload, `"revenue": 42.5`) || !strings.Contains(payload, `"userId": "live-user"`) {
		t.Fatalf("payload: %q", payload)
	}
	updated := c.text(`#feed .row .muted`)
	deadline := time.Now().Add(15 * time.Second)
	for c.text(`#feed .row .muted`) == updated {
		if time.Now().After(deadline) {
			t.Fatalf("the feed did not refresh itself: %q", updated)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if !run(c, chromedp.Evaluate[bool](row+`.querySelector('details').open`)) {
		t.Fatal("the opened payload closed when the feed refreshed")
	}
	// One refresh of the feed (the page's own polling): its cost per poll.
	updated = c.text(`#feed .row .muted`)
	prru, pwru := c.cost(func() {
		deadline := time.Now().Add(15 * time.Second)
		for c.text(`#feed .row .muted`) == updated {
			if time.Now().After(deadline) {
				t.Fatal("the feed did not refresh itself")
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	// On a loaded machine the window can also hold part of the next poll (the session check,
	// the sources listing, the rejection samples): one poll is about 2.5 RRU, never per event.
	if pwru != 0 || prru > 6 {
		t.Errorf("a feed refresh cost %.2f RRU, %.2f WRU", prru, pwru)
	}
	t.Logf("Live events feed: %.2f RRU, %.2f WRU per refresh (every %s)", prru, pwru, "3s")
	c.shot("live")

	// Pause: the feed stops polling.
	c.do(chromedp.Click(chromedp.ID("live-toggle")))
	c.waitText(`#live-toggle`, "Resume auto-refresh", false, 10*time.Second)
	if run(c, chromedp.Evaluate[bool](`document.querySelector('#feed').hasAttribute('hx-trigger')`)) {
		t.Fatal("the paused feed still polls")
	}

	c.open("/console/live?source=src_nope")
	if got := c.text(`p.error`); !strings.Contains(got, "There is no source") {
		t.Fatalf("unknown source: %q", got)
	}
}

// TestConsoleLiveEventsHidesSuppressed: once a person is suppressed, Live events shows none of
// their events still in the stream (sent before or after), and still shows everyone else's.
func TestConsoleLiveEventsHidesSuppressed(t *testing.T) {
	c := newConsoleSession(t)
	sendTracks(c, "hidden-user", analytics.Track{MessageId: "hidden-before", Event: "Signed Up"})
	pa := privacyAPI{t: t, base: c.stack.URL}
	pa.wait(pa.submit("suppress", "user_id:hidden-user"), time.Now(), 60*time.Second)
	sendTracks(c, "hidden-user", analytics.Track{MessageId: "hidden-after", Event: "Signed Up"})
	sendTracks(c, "shown-user", analytics.Track{MessageId: "shown-after", Event: "Signed Up"})
	c.open("/console/live")
	c.waitText(`#events`, "shown-after", true, 30*time.Second)
	if rows := c.text(`#events`); strings.Contains(rows, "hidden-") {
		t.Fatalf("a suppressed person's events are shown: %q", rows)
	}
}
