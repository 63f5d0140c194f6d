//go:build integration

package local_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	analytics "github.com/segmentio/analytics-go/v3"
)

// privCreateRequest fills the Privacy page's form and submits it (htmx answers into
// #new-result).
func privCreateRequest(c *consoleSession, typ, identifiers, reason, confirm string) {
	c.t.Helper()
	c.open("/console/privacy")
	c.do(chromedp.SetValue(chromedp.ID("pr-type"), typ), chromedp.SendKeys(chromedp.ID("pr-ids"), identifiers))
	if reason != "" {
		c.do(chromedp.SendKeys(chromedp.ID("pr-reason"), reason))
	}
	if confirm != "" {
		c.do(chromedp.SendKeys(chromedp.ID("pr-confirm"), confirm))
	}
	c.do(chromedp.Click(chromedp.CSS(`#new-request button[type=submit]`)))
}

// TestConsolePrivacy: the Privacy page's form shows the API's validation message for a bad
// identifier and refuses a suppress_with_delete without the typed confirmation, creating
// nothing either time; an export, a suppress and a delete made with the form complete (the
// page polls them); the log lists them newest first with masked identifiers and counts per
// store, the suppression list shows the suppressed person masked, and an event sent after
// the suppression is counted as dropped for its source. A request's own page shows its
// details and, for an export, the download.
func TestConsolePrivacy(t *testing.T) {
	c := newConsoleSession(t)
	carl, dana := newPerson("carl"), newPerson("dana")
	profSendPeople(t, c, carl, dana)

	privCreateRequest(c, "suppress", "email:"+carl.email+"\nnocolon", "", "")
	c.waitText("#new-result", `identifiers[1]: must be "type:value"`, false, 30*time.Second)
	privCreateRequest(c, "suppress_with_delete", "email:"+carl.email, "", "")
	c.waitText("#new-result", "type DELETE", false, 30*time.Second)
	c.open("/console/privacy")
	profCheckText(t, c, "#requests", "No privacy requests yet")

	privCreateRequest(c, "export", "user_id:"+dana.user, "asked by mail", "")
	c.profWaitVisible(`#new-result .request-status[data-type="export"][data-status="completed"]`, "#new-result", 60*time.Second)
	c.do(chromedp.Click(chromedp.CSS(`#new-result .request-status a[href*="/privacy/request?id="]`)), chromedp.WaitVisible(chromedp.ID("request-details")))
	profCheckText(t, c, "#request-details", "export", "asked by mail", "user_id:u…")
	doc := run(c, chromedp.Evaluate[string](`fetch(document.querySelector("a.export-link").href).then(r => r.text())`, chromedp.EvalAwaitPromise))
	if !strings.Contains(doc, "order-"+dana.user) {
		t.Errorf("the export from the request page lacks dana's order (%d bytes)", len(doc))
	}

	privCreateRequest(c, "suppress", "user_id:"+carl.user, "", "")
	c.profWaitVisible(`#new-result .request-status[data-type="suppress"][data-status="completed"]`, "#new-result", 60*time.Second)
	privCreateRequest(c, "delete", "email:"+dana.email, "", "DELETE")
	c.profWaitVisible(`#new-result .request-status[data-type="delete"][data-status="completed"]`, "#new-result", 60*time.Second)
	if st := newScnAPI(t, c.stack.URL).get("email:"+dana.email, "traits", nil); st != 404 {
		t.Errorf("dana after the delete: %d", st)
	}

	// An event of the suppressed person is dropped and counted for its source.
	client, err := analytics.NewWithConfig(c.writeKey, analytics.Config{Endpoint: c.stack.URL, BatchSize: 1, Interval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Enqueue(analytics.Track{MessageId: "after-" + carl.user, UserId: carl.user, Event: "Order Completed"}); err != nil {
		t.Fatal(err)
	}
	_ = client.Close()
	c.open("/console/privacy")
	c.waitText("#dropped tbody", "src_", true, 60*time.Second)

	profCheckText(t, c, "#requests tbody tr:nth-child(1)", "delete", "completed", "email:p…", "identity")
	profCheckText(t, c, "#requests tbody tr:nth-child(2)", "suppress", "completed")
	profCheckText(t, c, "#requests tbody tr:nth-child(3)", "export", "completed")
	profCheckText(t, c, "#suppressions", "user_id:u…")
	page := c.text("main")
	for _, v := range append(carl.values(), dana.values()...) {
		if strings.Contains(page, v) {
			t.Errorf("the Privacy page shows %q unmasked", v)
		}
	}
	rru, wru := c.cost(func() { c.open("/console/privacy"); c.do(chromedp.WaitVisible(chromedp.ID("requests"))) })
	t.Logf("Privacy page (3 requests, 1 suppression): %.2f RRU, %.2f WRU per view", rru, wru)
	if rru <= 0 || wru != 0 {
		t.Errorf("a Privacy page view cost %.2f RRU, %.2f WRU: want reads only", rru, wru)
	}
	c.shot("privacy")
}
