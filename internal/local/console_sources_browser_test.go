//go:build integration

package local_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	analytics "github.com/segmentio/analytics-go/v3"
)

// consoleTrack sends one track call straight to the tracking API with a write key and returns
// the status (analytics-go hides a 401 in a callback).
func consoleTrack(t *testing.T, base, writeKey, messageID string) int {
	t.Helper()
	return call(t, "POST", base+"/v1/track", "Basic "+basicToken(writeKey),
		map[string]any{"type": "track", "event": "Console Check", "userId": "console-src-user", "messageId": messageID}, nil)
}

// TestConsoleSources: a source created in the console gets a write key shown once (with the
// analytics.js code pointed at this deployment); an event sent with that key by analytics-go
// is stored (the Profile API shows it) and shown in Live events; once the source is disabled in the console a new event
// is refused with 401; after a key rotation in the console the old key is refused and the new
// one accepted.
func TestConsoleSources(t *testing.T) {
	c := newConsoleSession(t)
	rru, wru := c.cost(func() { c.open("/console/sources") })
	t.Logf("Sources page view: %.2f RRU, %.2f WRU (one source)", rru, wru)
	if wru != 0 {
		t.Errorf("viewing the Sources page wrote %.2f WRU", wru)
	}

	c.do(chromedp.SendKeys(chromedp.ID("source-name"), "console-web"),
		chromedp.Click(chromedp.CSS(`#page button[type=submit].primary`)), chromedp.WaitVisible(chromedp.ID("write-key")))
	key := strings.TrimSpace(c.text("#write-key"))
	snippet := c.text("#snippet")
	if len(key) < 16 || !strings.Contains(snippet, key) || !strings.Contains(snippet, `cdnURL: "`+c.stack.URL+`"`) {
		t.Fatalf("write key %q, snippet:\n%s", key, snippet)
	}
	if got := run(c, chromedp.AttributeValue(chromedp.CSS(`.secret button`), "data-copy")); got.Value != "write-key" {
		t.Fatalf("the copy button copies #%s", got.Value)
	}
	c.shot("sources")

	// The key works: analytics-go's event reaches the profile store.
	scnSend(t, c.stack.URL, key, 1, analytics.Identify{MessageId: "console-src-1", UserId: "console-src-user",
		Traits: analytics.NewTraits().SetEmail("console.src@example.com")})
	api := newScnAPI(t, c.stack.URL)
	eventually(t, "the event sent with the console's key in the profile", 30*time.Second, func() bool {
		m, ok := api.meta("user_id:console-src-user")
		return ok && m.EventCount == 1
	})
	// …and Live events shows it, under the new source, with its payload.
	c.open("/console/live")
	c.waitText(`#events`, "console-src-1", false, 30*time.Second)
	c.open("/console/sources")

	// Disabled in the console: refused.
	c.do(chromedp.Click(chromedp.CSS(`button[aria-label="Disable console-web"]`)))
	c.waitText("p.flash", "disabled", false, 10*time.Second)
	// htmx moves the focus once the swap settles, and adds classes of its own (htmx-added)
	// meanwhile: poll for ours.
	eventually(t, "the focus on the message saying what happened", 5*time.Second, func() bool {
		focused := run(c, chromedp.Evaluate[string](`document.activeElement.className`))
		return slices.Contains(strings.Fields(focused), "flash")
	})
	if st := consoleTrack(t, c.stack.URL, key, "console-src-2"); st != 401 {
		t.Fatalf("an event of the disabled source: %d, want 401", st)
	}
	if st := consoleTrack(t, c.stack.URL, c.writeKey, "console-src-other"); st != 200 {
		t.Fatalf("another source's event: %d", st)
	}

	// Enabled again, then the key rotated with no grace: the old key is refused, the new one works.
	c.do(chromedp.Click(chromedp.CSS(`button[aria-label="Enable console-web"]`)))
	c.waitText("p.flash", "enabled", false, 10*time.Second)
	if st := consoleTrack(t, c.stack.URL, key, "console-src-3"); st != 200 {
		t.Fatalf("an event after enabling again: %d", st)
	}
	c.do(chromedp.Click(chromedp.CSS(`tr:has(button[aria-label="Disable console-web"]) summary`)),
		chromedp.Click(chromedp.CSS(`button[aria-label="Rotate the write key of console-web"]`)))
	c.waitText("p.flash", "new write key", false, 10*time.Second)
	newKey := strings.TrimSpace(c.text("#write-key"))
	if newKey == key || len(newKey) < 16 {
		t.Fatalf("rotated key %q (old %q)", newKey, key)
	}
	if st := consoleTrack(t, c.stack.URL, key, "console-src-4"); st != 401 {
		t.Fatalf("the rotated-out key: %d, want 401", st)
	}
	if st := consoleTrack(t, c.stack.URL, newKey, "console-src-5"); st != 200 {
		t.Fatalf("the new key: %d", st)
	}
	eventually(t, "the events sent with both keys in the profile", 30*time.Second, func() bool {
		m, ok := api.meta("user_id:console-src-user")
		return ok && m.EventCount == 3
	})
	// A reload shows the list, never the key again.
	c.open("/console/sources")
	if body := c.text("#page"); strings.Contains(body, newKey) {
		t.Fatal("the write key is shown again after a reload")
	}
}
