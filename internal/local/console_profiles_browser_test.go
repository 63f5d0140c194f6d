//go:build integration

package local_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	analytics "github.com/segmentio/analytics-go/v3"
)

// profSendPeople sends, with the real client library, the events of people in two rounds, so
// that identity resolution merges: first a page and a product view from two anonymous devices
// (two anonymous profiles), then two identifies naming the devices with the user id (the
// first adds the user id and email to the first device's profile, the second merges the second
// device's profile into it) and a purchase with consent. It waits until each person's profile
// holds all five events.
func profSendPeople(t *testing.T, c *consoleSession, people ...*person) {
	t.Helper()
	client, err := analytics.NewWithConfig(c.writeKey, analytics.Config{Endpoint: c.stack.URL, BatchSize: 10, Interval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	api := newScnAPI(t, c.stack.URL)
	now := time.Now().UTC()
	enqueue := func(msgs ...analytics.Message) {
		for _, m := range msgs {
			if err := client.Enqueue(m); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, p := range people {
		enqueue(analytics.Page{MessageId: p.profMsg("page"), AnonymousId: p.dev1, Name: "Pricing", Timestamp: now.Add(-4 * time.Minute)},
			analytics.Track{MessageId: p.profMsg("view"), AnonymousId: p.dev2, Event: "Product Viewed", Timestamp: now.Add(-3 * time.Minute),
				Properties: analytics.NewProperties().SetSKU("sku-1")})
	}
	for _, p := range people {
		eventually(t, "two anonymous profiles for "+p.user, 60*time.Second, func() bool {
			return api.get("anonymous_id:"+p.dev1, "metadata", nil) == 200 && api.get("anonymous_id:"+p.dev2, "metadata", nil) == 200
		})
	}
	for _, p := range people {
		enqueue(analytics.Identify{MessageId: p.profMsg("identify1"), AnonymousId: p.dev1, UserId: p.user, Timestamp: now.Add(-2 * time.Minute),
			Traits: analytics.NewTraits().SetEmail(p.email).SetName(p.name).Set("street", p.street).Set("plan", "pro")},
			analytics.Identify{MessageId: p.profMsg("identify2"), AnonymousId: p.dev2, UserId: p.user, Timestamp: now.Add(-110 * time.Second)},
			analytics.Track{MessageId: p.profMsg("order"), UserId: p.user, Event: "Order Completed", Timestamp: now.Add(-time.Minute),
				Properties: analytics.NewProperties().SetRevenue(75).SetCurrency("EUR"),
				Context:    &analytics.Context{Extra: map[string]any{"consent": map[string]any{"categoryPreferences": map[string]any{"advertising": true, "analytics": false}}}}})
	}
	for _, p := range people {
		eventually(t, "one merged profile with 5 events for "+p.user, 60*time.Second, func() bool {
			var evs struct {
				Data []map[string]any `json:"data"`
			}
			return api.get("anonymous_id:"+p.dev2, "events", &evs) == 200 && len(evs.Data) == 5
		})
	}
}

// profMsg names one of the person's messages (and remembers it: the export must hold it).
func (p *person) profMsg(kind string) string {
	m := kind + "-" + p.user
	p.messages = append(p.messages, m)
	return m
}

// profWaitVisible waits (up to timeout) for an element, or fails the test showing what the
// element around it (dump) holds.
func (c *consoleSession) profWaitVisible(sel, dump string, timeout time.Duration) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(sel))); err != nil {
		html, _ := chromedp.Run(c.ctx, chromedp.InnerHTML(chromedp.CSS(dump)))
		c.t.Fatalf("%s never showed (%v); %s holds %s", sel, err, dump, html)
	}
}

// TestConsoleProfiles: a person sent with analytics-go (a page and a product view from two
// anonymous devices, two identifies that merge both into the user, a purchase with consent) is
// found in the console by email through the search form: the page shows every identifier, the
// traits, the consent, the computed trait and audience the segments stage gave them, the
// timeline (newest first, payload inside <details>) and the merge log with the rule of each
// merge. An unknown email says so. The Export button makes an export request whose status the
// page polls until it completes; its download holds the person's message ids. The Delete
// button needs DELETE typed; then the request completes, the Profile API answers 404 for the
// email, and the Privacy page lists the request as completed.
func TestConsoleProfiles(t *testing.T) {
	start := time.Now()
	c := newConsoleSession(t)
	t.Logf("%v: signed in", time.Since(start))
	admin := newSegAdmin(t, c.stack.URL)
	trait := admin.createTrait(map[string]any{"key": "orders_total", "name": "Orders total", "kind": "sum",
		"event": map[string]any{"name": "Order Completed"}, "property": "revenue"})
	aud := admin.createAudience("buyers", map[string]any{"event": map[string]any{"name": "Order Completed",
		"count": map[string]any{"op": "at_least", "n": 1}, "within": map[string]any{"days": 30}}})
	admin.waitLive(aud)
	eventually(t, "the computed trait live", segWait, func() bool { return admin.traitStatus(trait) == "live" })
	ann, bob := newPerson("ann"), newPerson("bob")
	t.Logf("%v: definitions live", time.Since(start))
	profSendPeople(t, c, ann, bob)
	t.Logf("%v: profiles stored", time.Since(start))

	// Search by email with the form: the identifier travels in the query string.
	c.open("/console/profiles")
	c.do(chromedp.SetValue(chromedp.ID("ps-type"), "email"), chromedp.SendKeys(chromedp.ID("ps-value"), strings.ToUpper(ann.email)),
		chromedp.Submit(chromedp.ID("ps-value")), chromedp.WaitVisible(chromedp.ID("profile-id")))
	if loc := run(c, chromedp.Location()); !strings.Contains(loc, "/console/profiles?") || !strings.Contains(loc, "value=") {
		t.Fatalf("the search went to %s", loc)
	}
	ids := c.text("#identifiers")
	for _, want := range []string{ann.user, ann.email, ann.dev1, ann.dev2} {
		if !strings.Contains(ids, want) {
			t.Errorf("identifiers lack %q: %q", want, ids)
		}
	}
	if strings.Contains(ids, bob.user) {
		t.Errorf("another person's identifier on the page: %q", ids)
	}
	profCheckText(t, c, "#traits", ann.name, ann.street)
	profCheckText(t, c, "#consent", "advertising", "granted")
	c.waitText("#audiences", "Audience buyers", true, segWait)
	c.waitText("#computed", "75", true, segWait)
	profCheckText(t, c, "#timeline tbody tr:first-child", "Order Completed") // newest first
	profCheckText(t, c, "#timeline", "Product Viewed", "Pricing", "identify")
	if payload := run(c, chromedp.TextContent(chromedp.CSS(`#timeline tbody tr:first-child details pre`))); !strings.Contains(payload, `"revenue": 75`) {
		t.Errorf("the newest event's payload: %q", payload)
	}
	profCheckText(t, c, "#merges", "merge", "flat matching: identifiers shared by both profiles", "identify1-"+ann.user, "identify2-"+ann.user)

	ref := "/console/profiles?type=email&value=" + url.QueryEscape(ann.email)
	rru, wru := c.cost(func() { c.open(ref); c.do(chromedp.WaitVisible(chromedp.ID("merges"))) })
	t.Logf("Profiles page: %.2f RRU, %.2f WRU per view", rru, wru)
	if rru <= 0 || wru != 0 {
		t.Errorf("a profile view cost %.2f RRU, %.2f WRU: want reads only", rru, wru)
	}
	c.shot("profiles")

	c.open("/console/profiles?id=" + url.QueryEscape("email:nobody-"+ann.email))
	profCheckText(t, c, "#not-found", "No profile has the identifier email:nobody-"+ann.email)

	profOlderEvents(t, c, bob)
	c.open(ref)
	t.Logf("%v: profile checked", time.Since(start))
	exportFromProfile(t, c, ann)
	t.Logf("%v: exported", time.Since(start))
	deleteFromProfile(t, c, ann, bob)
	t.Logf("%v: deleted", time.Since(start))
}

// olderEvents: a person with 27 events shows the newest 20, and "Older events" adds the other
// 7 (the API's cursor) below them, in the page, without reloading it.
func profOlderEvents(t *testing.T, c *consoleSession, p *person) {
	t.Helper()
	client, err := analytics.NewWithConfig(c.writeKey, analytics.Config{Endpoint: c.stack.URL, BatchSize: 22, Interval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().UTC().Add(-50 * time.Second)
	for i := range 22 {
		if err := client.Enqueue(analytics.Track{MessageId: fmt.Sprintf("more-%02d-%s", i, p.user), UserId: p.user, Event: "Product Viewed",
			Timestamp: base.Add(time.Duration(i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	_ = client.Close()
	api := newScnAPI(t, c.stack.URL)
	eventually(t, "27 events for "+p.user, 60*time.Second, func() bool {
		var evs struct {
			Data []map[string]any `json:"data"`
		}
		return call(t, "GET", api.base+url.PathEscape("user_id:"+p.user)+"/events?limit=100", api.auth, nil, &evs) == 200 && len(evs.Data) == 27
	})
	c.open("/console/profiles?id=" + url.QueryEscape("user_id:"+p.user))
	rows := func() int {
		return run(c, chromedp.Evaluate[int](`document.querySelectorAll("#timeline tbody tr:not(#events-more)").length`))
	}
	if n := rows(); n != 20 {
		t.Fatalf("the timeline shows %d events, want the newest 20", n)
	}
	profCheckText(t, c, "#timeline tbody tr:first-child", "more-21-"+p.user)
	c.do(chromedp.Click(chromedp.CSS(`#events-more a`)))
	c.profWaitVisible(`#timeline tbody tr:nth-child(27)`, "#timeline", 10*time.Second)
	if n := rows(); n != 27 {
		t.Errorf("after Older events the timeline shows %d events, want 27", n)
	}
	profCheckText(t, c, "#timeline tbody tr:nth-child(27)", "page-"+p.user) // the oldest, last
	if loc := run(c, chromedp.Location()); strings.Contains(loc, "events_next") {
		t.Errorf("Older events reloaded the page: %s", loc)
	}
}

// profCheckText fails the test unless the element's text holds every want.
func profCheckText(t *testing.T, c *consoleSession, sel string, want ...string) {
	t.Helper()
	got := c.text(sel)
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("%s lacks %q: %q", sel, w, got)
		}
	}
}

// exportFromProfile: the Export button's request completes (the page polls it) and its
// download holds every message id of the person.
func exportFromProfile(t *testing.T, c *consoleSession, p *person) {
	t.Helper()
	c.do(chromedp.Click(chromedp.ID("export-btn")))
	c.profWaitVisible(`#privacy-result .request-status`, "#privacy-result", 60*time.Second)
	c.waitText(`#privacy-result .request-status`, "completed", false, 60*time.Second)
	profCheckText(t, c, `#privacy-result .request-status`, "export", "identity")
	c.profWaitVisible(`#privacy-result a.export-link`, "#privacy-result", 5*time.Second)
	href := run(c, chromedp.AttributeValue(chromedp.CSS(`#privacy-result a.export-link`), "href"))
	if !strings.HasPrefix(href.Value, "/console/privacy/export?id=pr_") {
		t.Fatalf("export link %+v", href)
	}
	doc := run(c, chromedp.Evaluate[string](`fetch(document.querySelector("#privacy-result a.export-link").href).then(r => r.ok ? r.text() : "HTTP " + r.status)`,
		chromedp.EvalAwaitPromise))
	for _, m := range p.messages {
		if !strings.Contains(doc, m) {
			t.Errorf("the export document lacks message %s (%d bytes)", m, len(doc))
		}
	}
}

// deleteFromProfile: without the typed confirmation nothing is deleted; with it the request
// completes, the Profile API answers 404 for every identifier of the person (another person
// stays), and the Privacy page lists the request as completed.
func deleteFromProfile(t *testing.T, c *consoleSession, p, other *person) {
	t.Helper()
	api := newScnAPI(t, c.stack.URL)
	// By keyboard: Enter on the summary opens the confirmation, Enter in the field submits.
	c.do(chromedp.Focus(chromedp.CSS(`#delete-box summary`)), chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.ID("delete-confirm")))
	// The browser's own check (pattern) stops a wrong confirmation; the server refuses it too.
	c.do(chromedp.SendKeys(chromedp.ID("delete-confirm"), "delete"), chromedp.Click(chromedp.ID("delete-btn")))
	if valid := run(c, chromedp.Evaluate[bool](`document.getElementById("delete-confirm").checkValidity()`)); valid {
		t.Fatal("a lower-case confirmation is valid")
	}
	if st := api.get("email:"+p.email, "traits", nil); st != 200 {
		t.Fatalf("an unconfirmed delete deleted: %d", st)
	}
	run(c, chromedp.Evaluate[string](`document.getElementById("delete-confirm").value = ""`))
	c.do(chromedp.SendKeys(chromedp.ID("delete-confirm"), "DELETE"+kb.Enter))
	c.profWaitVisible(`#privacy-result .request-status[data-type="delete"][data-status="completed"]`, "#privacy-result", 60*time.Second)
	id := strings.TrimPrefix(run(c, chromedp.AttributeValue(chromedp.CSS(`#privacy-result .request-status[data-type="delete"][data-status="completed"]`), "id")).Value, "req-")
	for _, ref := range p.identifiers() {
		if st := api.get(ref, "traits", nil); st != 404 {
			t.Errorf("%s after the delete: %d, want 404", ref, st)
		}
	}
	if st := api.get("email:"+other.email, "traits", nil); st != 200 {
		t.Errorf("another person after the delete: %d", st)
	}
	c.open("/console/privacy")
	row := `#requests tr[data-request="` + id + `"]`
	profCheckText(t, c, row, "delete", "completed", "identity")
	if strings.Contains(c.text(row), p.email) {
		t.Errorf("the log shows the email unmasked: %q", c.text(row))
	}
}
