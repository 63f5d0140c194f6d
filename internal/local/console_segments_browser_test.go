//go:build integration

package local_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	analytics "github.com/segmentio/analytics-go/v3"
)

// The Audiences and Computed traits pages in a real browser: five people (three on plan pro,
// two on free, with orders of different ages) sent with analytics-go; a computed trait defined
// in the form and edited; an audience composed in the builder (a trait, a performed event with a count
// and a window, a negated group on the computed trait, removed again), its live preview
// checked at each step, saved, and its preview size compared with the members the admin API
// reports once the backfill is done; then deleted.

// segPeople sends the test's people: ada (pro, orders 2 and 20 days ago), bob (pro, an order
// 10 days ago), cyd (pro, an order 40 days ago), dan (free, an order yesterday), eve (free).
func segPeople(t *testing.T, c *consoleSession) {
	t.Helper()
	now := time.Now().UTC()
	who := func(id, plan string) analytics.Identify {
		return analytics.Identify{MessageId: "csg-i-" + id, UserId: "csg-" + id, Timestamp: now.Add(-50 * day),
			Traits: analytics.NewTraits().SetEmail(id+"@csg.example").Set("plan", plan)}
	}
	scnSend(t, c.stack.URL, c.writeKey, 50,
		who("ada", "pro"), who("bob", "pro"), who("cyd", "pro"), who("dan", "free"), who("eve", "free"),
		segOrder("csg-o1", "csg-ada", 2*day, now, 30, "hat", "apparel"),
		segOrder("csg-o2", "csg-ada", 20*day, now, 80, "boot", "footwear"),
		segOrder("csg-o3", "csg-bob", 10*day, now, 55, "shoe", "footwear"),
		segOrder("csg-o4", "csg-cyd", 40*day, now, 20, "sock", "apparel"),
		segOrder("csg-o5", "csg-dan", day, now, 99, "coat", "apparel"))
}

// field is the builder's form field of that name.
func field(name string) chromedp.CSS { return chromedp.CSS(fmt.Sprintf(`[name=%q]`, name)) }

// TestConsoleAudiencesBuilder: compose an audience in the builder, watch the preview, save it,
// and find the preview size in the members the admin API reports.
func TestConsoleAudiencesBuilder(t *testing.T) {
	c := newConsoleSession(t)
	adm := newSegAdmin(t, c.stack.URL)
	segPeople(t, c)
	draft := map[string]any{"name": "settle", "condition": map[string]any{"and": []any{
		map[string]any{"trait": map[string]any{"key": "plan", "op": "eq", "value": "pro"}},
		map[string]any{"event": map[string]any{"name": "Order Completed", "within": map[string]any{"days": 30}}}}}}
	eventually(t, "the five people in the segments stage", segWait, func() bool {
		p, st := adm.preview("", draft)
		return st == 200 && p.Scanned == 5 && p.Matched == 2
	})

	// A computed trait, defined in the form; the list shows it computing, then live (next to
	// one defined with the admin API).
	adm.createTrait(map[string]any{"name": "Revenue, 30 days", "kind": "sum", "property": "revenue",
		"event": map[string]any{"name": "Order Completed"}, "window": map[string]any{"days": 30}})
	c.open("/console/traits/new")
	c.do(chromedp.SendKeys(field("name"), "Order count"), chromedp.SendKeys(field("evname"), "Order Completed"))
	c.waitText("#draft", "Valid.", false, 5*time.Second)
	c.do(chromedp.Click(chromedp.CSS(`#trait-form button.primary`)), chromedp.WaitVisible(chromedp.CSS(`tr[data-trait="order_count"]`)))
	if got := c.text(`p.flash`); !strings.Contains(got, "Saved.") {
		t.Fatalf("after saving the trait: %q", got)
	}
	c.waitText(`tr[data-trait="order_count"] .status`, "live", false, segWait)
	c.waitText(`tr[data-trait="revenue_30_days"] .status`, "live", false, segWait)
	c.shot("traits")
	// Edit it: the form shows what is stored; a window makes a new version, live again.
	c.do(chromedp.Click(chromedp.CSS(`tr[data-trait="order_count"] a`)), chromedp.WaitVisible(field("window")))
	if v := run(c, chromedp.Value(field("evname"))); v != "Order Completed" {
		t.Fatalf("the edit form shows the event %q", v)
	}
	c.do(chromedp.SendKeys(field("window"), "365"))
	c.waitText("#definition", `"days": 365`, false, 5*time.Second)
	c.do(chromedp.SendKeys(field("window"), kb.Enter), chromedp.WaitVisible(chromedp.CSS(`tr[data-trait="order_count"]`)))
	c.waitText(`tr[data-trait="order_count"]`, "365 d", false, 5*time.Second)
	c.waitText(`tr[data-trait="order_count"] .status`, "live", false, segWait)
	rru, wru := c.cost(func() {
		c.open("/console/traits")
		c.waitText(`tr[data-trait="order_count"]`, "event_count", false, 5*time.Second)
	})
	t.Logf("Computed traits list: %.2f RRU, %.2f WRU per view (2 traits)", rru, wru)

	// The builder: an incomplete condition is reported at its row, then each step previews.
	c.open("/console/audiences/new")
	c.do(chromedp.SendKeys(field("name"), "Pro buyers"), chromedp.SendKeys(field("c.0.key"), "plan"))
	c.waitText("#preview", "Condition 1: value: is required for eq", false, 5*time.Second)
	c.waitText("#err-c-0", "value: is required for eq", false, 5*time.Second) // at the condition too
	c.do(chromedp.SendKeys(field("c.0.value"), "pro"))
	c.waitText("#preview-size", "3", false, 5*time.Second)
	c.do(chromedp.SetValue(field("c.add"), "event"), chromedp.Click(chromedp.CSS(`button[value="add:c"]`)),
		chromedp.WaitVisible(field("c.1.evname")))
	eventually(t, "the focus on the added condition's first field", 5*time.Second, func() bool { // htmx focuses after the swap settles
		return run(c, chromedp.Evaluate[string](`document.activeElement.name || ""`)) == "c.1.evname"
	})
	if got := c.text("#err-c-0"); got != "" {
		t.Fatalf("the fixed condition still shows %q", got)
	}
	c.do(chromedp.SendKeys(field("c.1.evname"), "Order Completed"))
	c.waitText("#preview-size", "3", false, 5*time.Second) // at least once, ever: cyd too
	c.do(chromedp.SendKeys(field("c.1.within"), "30"))
	c.waitText("#preview-size", "2", false, 5*time.Second)

	// A negated group on the computed trait: not (order_count ≥ 2) leaves bob alone.
	c.do(chromedp.SetValue(field("c.add"), "group"), chromedp.Click(chromedp.CSS(`button[value="add:c"]`)),
		chromedp.WaitVisible(field("c.2.add")))
	c.waitText("#preview", "Condition 3: add at least one condition", false, 5*time.Second)
	c.do(chromedp.SetValue(field("c.2.add"), "computedTrait"), chromedp.Click(chromedp.CSS(`button[value="add:c.2"]`)),
		chromedp.WaitVisible(field("c.2.0.value")))
	c.do(chromedp.SetValue(field("c.2.0.key"), "order_count"), chromedp.SetValue(field("c.2.0.op"), "gte"),
		chromedp.SendKeys(field("c.2.0.value"), "2"))
	ada, bob := adm.profileID(t, "csg-ada"), adm.profileID(t, "csg-bob")
	c.waitText("#preview-size", "1", false, 5*time.Second) // ada: pro, ordered in 30 days, 2 orders
	c.waitText("#preview .sample", ada, false, 5*time.Second)
	c.do(chromedp.Click(field("c.2.not")))
	c.waitText("#preview .sample", bob, false, 5*time.Second)
	run(c, chromedp.Evaluate[bool](`window.scrollTo(0, 0), true`))
	c.shot("audiences")
	if def := run(c, chromedp.Evaluate[string](`document.getElementById("definition").textContent`)); !strings.Contains(def, `"not": {`) || !strings.Contains(def, `"computedTrait"`) {
		t.Fatalf("generated definition without the negated computed trait:\n%s", def)
	}
	sample := run(c, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#preview .sample a")].map(a => a.textContent)`))
	if len(sample) != 1 || sample[0] != bob {
		t.Fatalf("preview sample %v, want bob (%s)", sample, bob)
	}
	c.do(chromedp.Click(chromedp.CSS(`button[value="remove:c.2"]`)), chromedp.WaitNotPresent(field("c.2.kind")))
	c.waitText("#preview-size", "2", false, 5*time.Second)

	// One preview call, measured: widen the window to 60 days (cyd's order counts).
	rru, wru = c.cost(func() {
		c.do(chromedp.SetValue(field("c.1.within"), "60")) // sets it and fires input and change
		c.waitText("#preview-size", "3", false, 5*time.Second)
	})
	t.Logf("one live preview (5 profiles, an event condition): %.2f RRU, %.2f WRU", rru, wru)
	c.do(chromedp.SetValue(field("c.1.within"), "30")) // sets it and fires input and change
	c.waitText("#preview-size", "2", false, 5*time.Second)
	previewSize := c.text("#preview-size")

	// Save: the list shows the audience computing, then live with the preview's size, and the
	// admin API lists as many members.
	// (Enter in a field saves: the form's first submit button is Save, not a builder button.)
	c.do(chromedp.SendKeys(field("name"), kb.Enter), chromedp.WaitVisible(chromedp.CSS(`tr[data-audience="pro_buyers"]`)))
	c.waitText(`tr[data-audience="pro_buyers"] .status`, "live", false, segWait)
	id := ""
	for _, a := range adm.audiences() {
		if a.Key == "pro_buyers" {
			id = a.ID
		}
	}
	adm.waitLive(id)
	eventually(t, "members as many as the preview", segWait, func() bool { return fmt.Sprint(len(adm.members(id))) == previewSize })
	c.waitText(`tr[data-audience="pro_buyers"] .size`, previewSize, true, 5*time.Second)
	rru, wru = c.cost(func() {
		c.open("/console/audiences")
		c.waitText(`tr[data-audience="pro_buyers"] .size`, previewSize, false, 5*time.Second)
	})
	t.Logf("Audiences list: %.2f RRU, %.2f WRU per view (1 audience of %s members)", rru, wru, previewSize)

	// Edit shows the saved tree and previews it at once.
	rru, wru = c.cost(func() {
		c.open("/console/audiences/" + id)
		c.waitText("#preview-size", previewSize, false, 5*time.Second)
	})
	t.Logf("Edit audience (page and its first preview): %.2f RRU, %.2f WRU", rru, wru)
	if v := run(c, chromedp.Value(field("c.1.within"))); v != "30" {
		t.Fatalf("the edit form shows the window %q", v)
	}

	// Delete, confirmed.
	c.open("/console/audiences")
	c.do(chromedp.Click(chromedp.CSS(`tr[data-audience="pro_buyers"] a[href$="/delete"]`)), chromedp.WaitVisible(chromedp.CSS(`button.danger`)))
	c.do(chromedp.Click(chromedp.CSS(`button.danger`)), chromedp.WaitVisible(chromedp.CSS(`p.flash`)))
	if got := c.text("main"); !strings.Contains(got, "Deleted.") || strings.Contains(got, "Pro buyers") {
		t.Fatalf("after the delete: %q", got)
	}
}

// profileID is the profile id of a user id (the Profile API's metadata).
func (a *segAdmin) profileID(t *testing.T, user string) string {
	t.Helper()
	return newScnAPI(t, strings.TrimSuffix(a.base, "/admin/v1")).mustMeta("user_id:" + user).ID
}
