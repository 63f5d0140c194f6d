//go:build integration

package local_test

// Computed traits and audiences (functions/segments) driven through the public interfaces only:
// definitions through the admin API, events through analytics-go and the tracking API, results
// through the Profile API (class=computed_trait|audience) and the admin API (members, size,
// preview), activations through a webhook receiver. Windows are exercised without a fake clock:
// events carry past timestamps (the tracking API's clock-skew correction keeps their age).

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	analytics "github.com/segmentio/analytics-go/v3"
)

const segWait = 20 * time.Second

// segAdmin talks to the admin API of one stack.
type segAdmin struct {
	t    *testing.T
	base string
}

func newSegAdmin(t *testing.T, stackURL string) *segAdmin {
	return &segAdmin{t: t, base: stackURL + "/admin/v1"}
}

func (a *segAdmin) do(method, path string, body, out any) int {
	a.t.Helper()
	return call(a.t, method, a.base+path, "Bearer "+adminToken, body, out)
}

type segDefView struct {
	ID       string `json:"id"`
	Key      string `json:"key"`
	Version  int64  `json:"version"`
	Status   string `json:"status"`
	Size     int    `json:"size"`
	Backfill *struct {
		Status    string `json:"status"`
		Processed int    `json:"processed"`
	} `json:"backfill"`
}

// createTrait saves a computed trait and returns its id.
func (a *segAdmin) createTrait(def map[string]any) string {
	a.t.Helper()
	var v segDefView
	if st := a.do("POST", "/computed-traits", def, &v); st != 201 || v.ID == "" || v.Status != "computing" {
		a.t.Fatalf("create computed trait %v: %d %+v", def["key"], st, v)
	}
	return v.ID
}

// createAudience saves an audience and returns its id; a new audience starts computing.
func (a *segAdmin) createAudience(key string, cond map[string]any) string {
	a.t.Helper()
	var v segDefView
	body := map[string]any{"key": key, "name": "Audience " + key, "condition": cond}
	if st := a.do("POST", "/audiences", body, &v); st != 201 || v.ID == "" || v.Key != key || v.Status != "computing" {
		a.t.Fatalf("create audience %s: %d %+v", key, st, v)
	}
	return v.ID
}

func (a *segAdmin) audience(id string) segDefView {
	a.t.Helper()
	var v segDefView
	if st := a.do("GET", "/audiences/"+id, nil, &v); st != 200 {
		a.t.Fatalf("get audience %s: %d", id, st)
	}
	return v
}

func (a *segAdmin) audiences() []segDefView {
	a.t.Helper()
	var out struct {
		Audiences []segDefView `json:"audiences"`
	}
	if st := a.do("GET", "/audiences", nil, &out); st != 200 {
		a.t.Fatalf("list audiences: %d", st)
	}
	return out.Audiences
}

func (a *segAdmin) traitStatus(id string) string {
	a.t.Helper()
	var v segDefView
	if st := a.do("GET", "/computed-traits/"+id, nil, &v); st != 200 {
		a.t.Fatalf("get computed trait %s: %d", id, st)
	}
	return v.Status
}

// members lists an audience's member profile ids (sorted), following the paging (2 a page, so
// paging is exercised).
func (a *segAdmin) members(id string) []string {
	a.t.Helper()
	ids := []string{}
	next := ""
	for page := 0; page < 100; page++ {
		var out struct {
			Members []struct {
				ProfileID string    `json:"profileId"`
				EnteredAt time.Time `json:"enteredAt"`
			} `json:"members"`
			Next string `json:"next"`
		}
		q := "?limit=2"
		if next != "" {
			q += "&next=" + url.QueryEscape(next)
		}
		if st := a.do("GET", "/audiences/"+id+"/members"+q, nil, &out); st != 200 {
			a.t.Fatalf("members of %s: %d", id, st)
		}
		for _, m := range out.Members {
			if m.EnteredAt.IsZero() {
				a.t.Fatalf("member %s of %s without enteredAt", m.ProfileID, id)
			}
			ids = append(ids, m.ProfileID)
		}
		if next = out.Next; next == "" {
			sort.Strings(ids)
			return ids
		}
	}
	a.t.Fatalf("members of %s: paging does not end", id)
	return nil
}

type segPreview struct {
	Matched  int      `json:"matched"`
	Scanned  int      `json:"scanned"`
	Complete bool     `json:"complete"`
	Sample   []string `json:"sample"`
}

func (a *segAdmin) preview(query string, draft map[string]any) (segPreview, int) {
	a.t.Helper()
	var p segPreview
	st := a.do("POST", "/audiences/preview"+query, draft, &p)
	return p, st
}

// waitLive waits until every audience's backfill is done.
func (a *segAdmin) waitLive(ids ...string) {
	a.t.Helper()
	eventually(a.t, "audiences live", segWait, func() bool {
		for _, id := range ids {
			if a.audience(id).Status != "live" {
				return false
			}
		}
		return true
	})
}

// segClassTraits reads the Profile API traits of one class (computed_trait or audience).
func segClassTraits(t *testing.T, api *scnAPI, user, class string) map[string]any {
	t.Helper()
	var out struct {
		Traits map[string]any `json:"traits"`
	}
	if st := api.get("user_id:"+user, "traits?limit=200&class="+class, &out); st != 200 {
		t.Fatalf("traits (class=%s) of %s: %d", class, user, st)
	}
	if out.Traits == nil {
		out.Traits = map[string]any{}
	}
	return out.Traits
}

// segComputedOnceKnown is the user's computed traits, or nil while the profile does not exist.
func segComputedOnceKnown(t *testing.T, api *scnAPI, user string) map[string]any {
	t.Helper()
	if _, ok := api.meta("user_id:" + user); !ok {
		return nil
	}
	return segClassTraits(t, api, user, "computed_trait")
}

// segAudienceKeys lists the audiences the Profile API shows the user in (each must be true).
func segAudienceKeys(t *testing.T, api *scnAPI, user string) []string {
	t.Helper()
	keys := []string{}
	for k, v := range segClassTraits(t, api, user, "audience") {
		if v != true {
			t.Fatalf("audience %s of %s is %v, want true", k, user, v)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// segSettle waits until ok holds, failing with the last state it described.
func segSettle(t *testing.T, what string, ok func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(segWait)
	for {
		done, state := ok()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; last state:\n%s", what, state)
		}
		time.Sleep(150 * time.Millisecond)
	}
}

func segOrder(id, user string, age time.Duration, now time.Time, revenue float64, product, category string) analytics.Track {
	return analytics.Track{MessageId: id, UserId: user, Event: "Order Completed", Timestamp: now.Add(-age),
		Properties: analytics.NewProperties().Set("revenue", revenue).Set("product", product).Set("category", category)}
}

func segTrack(id, user, event string, age time.Duration, now time.Time) analytics.Track {
	return analytics.Track{MessageId: id, UserId: user, Event: event, Timestamp: now.Add(-age)}
}

const day = 24 * time.Hour

// segEventTime is the stored (skew-corrected) timestamp of one of the user's events.
func segEventTime(t *testing.T, api *scnAPI, user, messageID string) time.Time {
	t.Helper()
	var out struct {
		Data []struct {
			MessageID string    `json:"message_id"`
			Timestamp time.Time `json:"timestamp"`
		} `json:"data"`
	}
	if st := api.get("user_id:"+user, "events?limit=100", &out); st != 200 {
		t.Fatalf("events of %s: %d", user, st)
	}
	for _, d := range out.Data {
		if d.MessageID == messageID {
			return d.Timestamp
		}
	}
	t.Fatalf("event %s of %s not in the timeline", messageID, user)
	return time.Time{}
}

func segJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestSegmentsComputedTraitKinds defines one computed trait of every kind over "Order
// Completed" and checks each value exactly, for a customer with five orders (one outside the
// 30-day window, one inside the 72-hour window) and one with a single order.
func TestSegmentsComputedTraitKinds(t *testing.T) {
	stack, _, writeKey := startStack(t)
	adm := newSegAdmin(t, stack.URL)
	api := newScnAPI(t, stack.URL)
	const user, other = "ctk-ada", "ctk-bob"

	orders := map[string]any{"name": "Order Completed"}
	defs := []map[string]any{
		{"key": "order_count", "kind": "event_count", "event": orders},
		{"key": "apparel_orders", "kind": "event_count", "event": map[string]any{"name": "Order Completed",
			"where": []map[string]any{{"key": "category", "op": "eq", "value": "apparel"}}}},
		{"key": "orders_72h", "kind": "event_count", "event": orders, "window": map[string]any{"hours": 72}},
		{"key": "total_revenue", "kind": "sum", "event": orders, "property": "revenue"},
		{"key": "revenue_30d", "kind": "sum", "event": orders, "property": "revenue", "window": map[string]any{"days": 30}},
		{"key": "avg_revenue", "kind": "avg", "event": orders, "property": "revenue"},
		{"key": "min_revenue", "kind": "min", "event": orders, "property": "revenue"},
		{"key": "max_revenue", "kind": "max", "event": orders, "property": "revenue"},
		{"key": "top_product", "kind": "most_frequent", "event": orders, "property": "product"},
		{"key": "first_product", "kind": "first", "event": orders, "property": "product"},
		{"key": "first_order_at", "kind": "first", "event": orders}, // no property: the event's time
		{"key": "last_product", "kind": "last", "event": orders, "property": "product"},
		{"key": "products", "kind": "unique_list", "event": orders, "property": "product"},
		{"key": "category_count", "kind": "unique_count", "event": orders, "property": "category"},
		// RFM and lifetime value default to "Order Completed" and revenue.
		{"key": "rfm_r", "kind": "rfm_recency"},
		{"key": "rfm_f", "kind": "rfm_frequency"},
		{"key": "rfm_m", "kind": "rfm_monetary"},
		{"key": "ltv", "kind": "lifetime_value"},
	}
	allKinds := []string{"event_count", "sum", "avg", "min", "max", "most_frequent", "first", "last", "unique_list",
		"unique_count", "rfm_recency", "rfm_frequency", "rfm_monetary", "lifetime_value"}
	used := map[string]bool{}
	var ids []string
	for _, d := range defs {
		d["name"] = "Trait " + d["key"].(string)
		used[d["kind"].(string)] = true
		ids = append(ids, adm.createTrait(d))
	}
	for _, k := range allKinds {
		if !used[k] {
			t.Fatalf("kind %s not covered", k)
		}
	}
	eventually(t, "computed-trait backfills live", segWait, func() bool {
		for _, id := range ids {
			if adm.traitStatus(id) != "live" {
				return false
			}
		}
		return true
	})

	now := time.Now().UTC()
	scnSend(t, stack.URL, writeKey, 50,
		analytics.Identify{MessageId: "ctk-i1", UserId: user, Timestamp: now.Add(-50 * day), Traits: analytics.NewTraits().SetName("Ada")},
		segOrder("ctk-o1", user, 40*day, now, 100, "boot", "footwear"), // outside the 30-day window
		segOrder("ctk-o2", user, 20*day, now, 50, "shoe", "footwear"),
		segOrder("ctk-o3", user, 10*day, now, 25.5, "hat", "apparel"),
		segOrder("ctk-o4", user, 5*day, now, 200, "shoe", "footwear"),
		segOrder("ctk-o5", user, 2*day, now, 10, "sock", "apparel"), // the only one in the last 72 hours
		// Another event with the same properties counts in no trait.
		analytics.Track{MessageId: "ctk-v1", UserId: user, Event: "Product Viewed", Timestamp: now.Add(-time.Hour),
			Properties: analytics.NewProperties().Set("revenue", 999).Set("product", "tv").Set("category", "electronics")},
		segOrder("ctk-o6", other, 1*day, now, 7, "pen", "office"),
	)
	api.settled("Ada's seven events", 7, "user_id:"+user)
	api.settled("Bob's order", 1, "user_id:"+other)

	want := map[string]map[string]any{
		user: {
			"order_count":    5.0,
			"apparel_orders": 2.0,
			"orders_72h":     1.0,
			"total_revenue":  385.5,
			"revenue_30d":    285.5, // 50 + 25.5 + 200 + 10: the 40-day-old order is out
			"avg_revenue":    77.1,
			"min_revenue":    10.0,
			"max_revenue":    200.0,
			"top_product":    "shoe",
			"first_product":  "boot",
			"first_order_at": segEventTime(t, api, user, "ctk-o1").UTC().Format(time.RFC3339Nano),
			"last_product":   "sock",
			"products":       []any{"boot", "hat", "shoe", "sock"},
			"category_count": 2.0,
			"rfm_r":          5.0, // last purchase 2 days ago (< 7)
			"rfm_f":          4.0, // 5 purchases: ≥ 2, 3, 5
			"rfm_m":          3.0, // 385.5: ≥ 50, 200
			"ltv":            385.5,
		},
		other: {
			"order_count":    1.0,
			"apparel_orders": 0.0, // counts are 0, not absent
			"orders_72h":     1.0,
			"total_revenue":  7.0,
			"revenue_30d":    7.0,
			"avg_revenue":    7.0,
			"min_revenue":    7.0,
			"max_revenue":    7.0,
			"top_product":    "pen",
			"first_product":  "pen",
			"first_order_at": segEventTime(t, api, other, "ctk-o6").UTC().Format(time.RFC3339Nano),
			"last_product":   "pen",
			"products":       []any{"pen"},
			"category_count": 1.0,
			"rfm_r":          5.0,
			"rfm_f":          1.0,
			"rfm_m":          1.0,
			"ltv":            7.0,
		},
	}
	for _, u := range []string{user, other} {
		segSettle(t, "computed traits of "+u, func() (bool, string) {
			got := segClassTraits(t, api, u, "computed_trait")
			if reflect.DeepEqual(got, want[u]) {
				return true, ""
			}
			var diff []string
			for k := range want[u] {
				if !reflect.DeepEqual(got[k], want[u][k]) {
					diff = append(diff, fmt.Sprintf("%s: got %s, want %s", k, segJSON(got[k]), segJSON(want[u][k])))
				}
			}
			for k := range got {
				if _, ok := want[u][k]; !ok {
					diff = append(diff, fmt.Sprintf("%s: unexpected %s", k, segJSON(got[k])))
				}
			}
			sort.Strings(diff)
			return false, strings.Join(diff, "\n")
		})
	}
	// The first_order_at value is the skew-corrected time, about 40 days ago.
	if at, _ := time.Parse(time.RFC3339Nano, want[user]["first_order_at"].(string)); at.Sub(now.Add(-40*day)).Abs() > 5*time.Second {
		t.Fatalf("first_order_at %v, want about %v", at, now.Add(-40*day))
	}
	// User traits are not mixed into the computed class, nor computed traits into the user class.
	if got := segClassTraits(t, api, user, "user"); !reflect.DeepEqual(got, map[string]any{"name": "Ada"}) {
		t.Fatalf("class=user: %v", got)
	}
}

// segAud is an audience of TestSegmentsConditionKinds with the users expected in it.
type segAud struct {
	key  string
	cond map[string]any
	want []string
}

func segTraitCond(key, op string, value any) map[string]any {
	p := map[string]any{"key": key, "op": op}
	if value != nil {
		p["value"] = value
	}
	return map[string]any{"trait": p}
}

// TestSegmentsConditionKinds defines an audience for each kind of condition and checks exactly
// which of three customers is in which, through the Profile API and the members endpoint.
func TestSegmentsConditionKinds(t *testing.T) {
	stack, _, writeKey := startStack(t)
	adm := newSegAdmin(t, stack.URL)
	api := newScnAPI(t, stack.URL)
	const alice, bob, carol = "cnd-alice", "cnd-bob", "cnd-carol"
	now := time.Now().UTC()

	adm.createTrait(map[string]any{"key": "total_spend", "name": "Total spend", "kind": "sum",
		"event": map[string]any{"name": "Order Completed"}, "property": "revenue"})
	ordered := func(extra map[string]any) map[string]any {
		e := map[string]any{"name": "Order Completed"}
		for k, v := range extra {
			e[k] = v
		}
		return map[string]any{"event": e}
	}
	viewedLastWeek := map[string]any{"event": map[string]any{"name": "Product Viewed", "within": map[string]any{"days": 7}}}
	auds := []segAud{
		{"t_eq", segTraitCond("plan", "eq", "pro"), []string{alice}},
		{"t_neq", segTraitCond("plan", "neq", "free"), []string{alice, carol}},
		{"t_gt", segTraitCond("age", "gt", 34), []string{carol}},
		{"t_gte", segTraitCond("age", "gte", 34), []string{alice, carol}},
		{"t_lt", segTraitCond("age", "lt", 34), []string{bob}},
		{"t_lte", segTraitCond("age", "lte", 34), []string{alice, bob}},
		{"t_contains", segTraitCond("name", "contains", "Smith"), []string{alice, carol}},
		{"t_starts_with", segTraitCond("email", "starts_with", "bob@"), []string{bob}},
		{"t_exists", segTraitCond("vip", "exists", nil), []string{carol}},
		{"t_not_exists", segTraitCond("email", "exists", false), []string{carol}},
		{"t_in", segTraitCond("country", "in", []any{"DE", "FR"}), []string{alice, carol}},
		{"t_nested_key", segTraitCond("address.city", "eq", "Berlin"), []string{alice}},
		{"ct_big_spender", map[string]any{"computedTrait": map[string]any{"key": "total_spend", "op": "gte", "value": 200}}, []string{bob}},
		{"ev_performed", ordered(nil), []string{alice, bob}},
		{"ev_at_least_2", ordered(map[string]any{"count": map[string]any{"op": "at_least", "n": 2}}), []string{alice}},
		{"ev_at_most_1", ordered(map[string]any{"count": map[string]any{"op": "at_most", "n": 1}}), []string{bob, carol}},
		{"ev_exactly_1", ordered(map[string]any{"count": map[string]any{"op": "exactly", "n": 1}}), []string{bob}},
		{"ev_within_30d", ordered(map[string]any{"within": map[string]any{"days": 30}}), []string{alice}},
		{"ev_2_within_30d", ordered(map[string]any{"within": map[string]any{"days": 30}, "count": map[string]any{"op": "exactly", "n": 2}}), []string{alice}},
		{"ev_between", ordered(map[string]any{"between": map[string]any{"from": now.Add(-50 * day), "to": now.Add(-35 * day)}}), []string{alice, bob}},
		{"ev_where", ordered(map[string]any{"where": []map[string]any{{"key": "revenue", "op": "gte", "value": 100}}}), []string{alice, bob}},
		{"ev_where_within", ordered(map[string]any{"where": []map[string]any{{"key": "revenue", "op": "gte", "value": 100}},
			"within": map[string]any{"days": 30}}), []string{alice}},
		{"never_ordered", map[string]any{"not": ordered(nil)}, []string{carol}},
		{"nested_and_or_not", map[string]any{"and": []any{
			map[string]any{"or": []any{segTraitCond("plan", "eq", "pro"), segTraitCond("plan", "eq", "enterprise")}},
			map[string]any{"not": viewedLastWeek},
		}}, []string{alice}},
		{"nested_or_and", map[string]any{"or": []any{
			map[string]any{"and": []any{segTraitCond("country", "eq", "US"), viewedLastWeek}},
			map[string]any{"computedTrait": map[string]any{"key": "total_spend", "op": "lt", "value": 100}}, // Carol has none: no match
		}}, []string{bob}},
		{"aud_between_us", map[string]any{"and": []any{map[string]any{"audience": map[string]any{"key": "ev_between"}}, segTraitCond("country", "eq", "US")}}, []string{bob}},
		{"aud_not_pro", map[string]any{"not": map[string]any{"audience": map[string]any{"key": "t_eq"}}}, []string{bob, carol}},
		{"aud_of_aud_of_aud", map[string]any{"and": []any{map[string]any{"audience": map[string]any{"key": "aud_not_pro"}}, map[string]any{"not": map[string]any{"audience": map[string]any{"key": "never_ordered"}}}}}, []string{bob}},
	}
	audIDs := map[string]string{}
	for _, a := range auds {
		audIDs[a.key] = adm.createAudience(a.key, a.cond)
	}
	ids := make([]string, 0, len(audIDs))
	for _, id := range audIDs {
		ids = append(ids, id)
	}
	adm.waitLive(ids...)

	scnSend(t, stack.URL, writeKey, 50,
		analytics.Identify{MessageId: "cnd-i1", UserId: alice, Timestamp: now.Add(-time.Hour), Traits: analytics.NewTraits().
			Set("plan", "pro").Set("age", 34).Set("name", "Alice Smith").SetEmail("alice@example.com").Set("country", "DE").
			Set("address", map[string]any{"city": "Berlin"})},
		analytics.Identify{MessageId: "cnd-i2", UserId: bob, Timestamp: now.Add(-time.Hour), Traits: analytics.NewTraits().
			Set("plan", "free").Set("age", 21).Set("name", "Bob Jones").SetEmail("bob@test.org").Set("country", "US").
			Set("address", map[string]any{"city": "Boston"})},
		analytics.Identify{MessageId: "cnd-i3", UserId: carol, Timestamp: now.Add(-time.Hour), Traits: analytics.NewTraits().
			Set("plan", "enterprise").Set("age", 50).Set("name", "Carol Smith").Set("country", "FR").Set("vip", true)},
		segOrder("cnd-a1", alice, 5*day, now, 100, "boot", "footwear"),
		segOrder("cnd-a2", alice, 10*day, now, 50, "hat", "apparel"),
		segOrder("cnd-a3", alice, 40*day, now, 20, "sock", "apparel"),
		segOrder("cnd-b1", bob, 45*day, now, 500, "tv", "electronics"),
		segTrack("cnd-b2", bob, "Product Viewed", 1*day, now),
		segTrack("cnd-c1", carol, "Product Viewed", 3*day, now),
		segTrack("cnd-c2", carol, "Product Viewed", 4*day, now),
	)
	api.settled("Alice's events", 4, "user_id:"+alice)
	api.settled("Bob's events", 3, "user_id:"+bob)
	api.settled("Carol's events", 3, "user_id:"+carol)
	pids := map[string]string{}
	users := map[string]string{}
	for _, u := range []string{alice, bob, carol} {
		pids[u] = api.mustMeta("user_id:" + u).ID
		users[pids[u]] = u
	}

	wantKeys := map[string][]string{alice: {}, bob: {}, carol: {}}
	for _, a := range auds {
		for _, u := range a.want {
			wantKeys[u] = append(wantKeys[u], a.key)
		}
	}
	for _, u := range []string{alice, bob, carol} {
		sort.Strings(wantKeys[u])
		segSettle(t, "audiences of "+u, func() (bool, string) {
			got := segAudienceKeys(t, api, u)
			return reflect.DeepEqual(got, wantKeys[u]), fmt.Sprintf("got  %v\nwant %v", got, wantKeys[u])
		})
	}
	if got := segClassTraits(t, api, bob, "computed_trait"); !reflect.DeepEqual(got, map[string]any{"total_spend": 500.0}) {
		t.Fatalf("Bob's computed traits: %v", got)
	}
	if got := segClassTraits(t, api, carol, "computed_trait"); len(got) != 0 {
		t.Fatalf("Carol (no orders) has computed traits: %v", got)
	}
	for _, a := range auds {
		want := []string{}
		for _, u := range a.want {
			want = append(want, pids[u])
		}
		sort.Strings(want)
		segSettle(t, "members of "+a.key, func() (bool, string) {
			got := adm.members(audIDs[a.key])
			names := []string{}
			for _, p := range got {
				names = append(names, users[p])
			}
			return reflect.DeepEqual(got, want), fmt.Sprintf("got %v, want %v", names, a.want)
		})
		if v := adm.audience(audIDs[a.key]); v.Size != len(a.want) {
			t.Fatalf("%s: size %d, want %d", a.key, v.Size, len(a.want))
		}
	}
}

// TestSegmentsBackfillAfterEvents sends the events first and only then defines the audience:
// the backfill computes it over the existing profiles (computing → live), and a destination
// subscribed to it gets one signed Audience Entered per member and nothing for the others.
func TestSegmentsBackfillAfterEvents(t *testing.T) {
	stack, _, writeKey := startStack(t)
	adm := newSegAdmin(t, stack.URL)
	api := newScnAPI(t, stack.URL)
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()

	var created struct {
		Destination struct{ ID string } `json:"destination"`
		Secret      string              `json:"secret"`
	}
	if st := adm.do("POST", "/destinations", map[string]any{
		"name": "crm", "url": srv.URL + "/hook",
		"subscriptions": map[string]any{"audiences": []string{"recent_buyers"}},
	}, &created); st != 201 || created.Secret == "" {
		t.Fatalf("create destination: %d %+v", st, created)
	}
	rc.mu.Lock()
	rc.secret = created.Secret
	rc.mu.Unlock()
	// A computed trait over every event shows when the segments stage has seen each profile.
	adm.createTrait(map[string]any{"key": "events_seen", "name": "Events seen", "kind": "event_count", "event": map[string]any{"name": "*"}})

	const u1, u2, u3, u4 = "bf-1", "bf-2", "bf-3", "bf-4"
	now := time.Now().UTC()
	scnSend(t, stack.URL, writeKey, 50,
		segOrder("bf-o1", u1, 3*day, now, 30, "boot", "footwear"),
		segOrder("bf-o2", u1, 6*day, now, 40, "hat", "apparel"),
		segOrder("bf-o3", u2, 10*day, now, 50, "sock", "apparel"),
		segOrder("bf-o4", u3, 60*day, now, 60, "tv", "electronics"), // too long ago
		segTrack("bf-v1", u3, "Product Viewed", 1*day, now),
		segTrack("bf-v2", u4, "Product Viewed", 1*day, now), // never ordered
	)
	seen := map[string]float64{u1: 2, u2: 1, u3: 2, u4: 1}
	pids := map[string]string{}
	for u, n := range seen {
		segSettle(t, "the segments stage to see "+u, func() (bool, string) {
			got := segComputedOnceKnown(t, api, u)
			return got["events_seen"] == n, fmt.Sprint(got)
		})
		pids[u] = api.mustMeta("user_id:" + u).ID
	}

	id := adm.createAudience("recent_buyers", map[string]any{"event": map[string]any{
		"name": "Order Completed", "within": map[string]any{"days": 30}}})
	adm.waitLive(id)
	v := adm.audience(id)
	if v.Backfill == nil || v.Backfill.Status != "live" || v.Backfill.Processed != 4 {
		t.Fatalf("backfill after live: %+v", v.Backfill)
	}
	want := []string{pids[u1], pids[u2]}
	sort.Strings(want)
	if got := adm.members(id); !reflect.DeepEqual(got, want) {
		t.Fatalf("members %v, want %v (bf-1, bf-2)", got, want)
	}
	if v.Size != 2 {
		t.Fatalf("size %d, want 2", v.Size)
	}
	for u, in := range map[string]bool{u1: true, u2: true, u3: false, u4: false} {
		want := []string{}
		if in {
			want = []string{"recent_buyers"}
		}
		if got := segAudienceKeys(t, api, u); !reflect.DeepEqual(got, want) {
			t.Fatalf("Profile API audiences of %s: %v, want %v", u, got, want)
		}
	}

	eventually(t, "two Audience Entered at the webhook", segWait, func() bool {
		got, _ := rc.snapshot()
		return len(got) >= 2
	})
	time.Sleep(1500 * time.Millisecond) // a duplicate or a message for a non-member would arrive now
	got, bad := rc.snapshot()
	if bad != 0 || len(got) != 2 {
		t.Fatalf("receiver got %d messages (%d with bad signatures): %v", len(got), bad, got)
	}
	var who []string
	for _, m := range got {
		props, _ := m["properties"].(map[string]any)
		if m["type"] != "track" || m["event"] != "Audience Entered" || props["audience_key"] != "recent_buyers" || props["recent_buyers"] != true {
			t.Fatalf("webhook payload: %v", m)
		}
		who = append(who, fmt.Sprint(m["userId"]))
	}
	if !sameSet(who, []string{u1, u2}) {
		t.Fatalf("Audience Entered for %v, want bf-1 and bf-2", who)
	}
}

// TestSegmentsPreviewAndSize previews a draft (it counts matches and saves nothing), then saves
// it: the audience's size equals its member count and the preview's count.
func TestSegmentsPreviewAndSize(t *testing.T) {
	stack, _, writeKey := startStack(t)
	adm := newSegAdmin(t, stack.URL)
	api := newScnAPI(t, stack.URL)
	freeID := adm.createAudience("free_users", segTraitCond("plan", "eq", "free"))
	adm.waitLive(freeID)

	now := time.Now().UTC()
	plans := map[string]string{"pv-1": "pro", "pv-2": "free", "pv-3": "pro", "pv-4": ""}
	var msgs []analytics.Message
	for u, plan := range plans {
		tr := analytics.NewTraits().SetName(u)
		if plan != "" {
			tr.Set("plan", plan)
		}
		msgs = append(msgs, analytics.Identify{MessageId: u + "-i", UserId: u, Timestamp: now.Add(-time.Minute), Traits: tr})
	}
	scnSend(t, stack.URL, writeKey, 50, msgs...)
	pids := map[string]string{}
	for u := range plans {
		pids[u] = api.settled("profile "+u, 1, "user_id:"+u).ID
	}

	draft := map[string]any{"name": "Pro users", "key": "pro_users", "condition": segTraitCond("plan", "eq", "pro")}
	segSettle(t, "the segments stage to see four profiles", func() (bool, string) {
		p, st := adm.preview("", draft)
		return st == 200 && p.Scanned == 4, fmt.Sprintf("%d %+v", st, p)
	})
	before := adm.audiences()
	if len(before) != 1 || before[0].ID != freeID || before[0].Size != 1 {
		t.Fatalf("audiences before the preview: %+v", before)
	}
	p, st := adm.preview("", draft)
	wantPro := []string{pids["pv-1"], pids["pv-3"]}
	sort.Strings(wantPro)
	sort.Strings(p.Sample)
	if st != 200 || p.Matched != 2 || p.Scanned != 4 || !p.Complete || !reflect.DeepEqual(p.Sample, wantPro) {
		t.Fatalf("preview: %d %+v, want 2 matched (%v) of 4, complete", st, p, wantPro)
	}
	// A limit stops the scan early and says so.
	if lp, st := adm.preview("?limit=2", draft); st != 200 || lp.Scanned != 2 || lp.Complete || lp.Matched > 2 {
		t.Fatalf("preview with limit=2: %d %+v", st, lp)
	}
	// A draft that neither matches nor needs a name.
	if np, st := adm.preview("", map[string]any{"condition": segTraitCond("plan", "eq", "gold")}); st != 200 || np.Matched != 0 || np.Scanned != 4 || !np.Complete || len(np.Sample) != 0 {
		t.Fatalf("preview of a draft matching nobody: %d %+v", st, np)
	}
	// An invalid draft is a 400 naming the field.
	var perr struct{ Code, Message string }
	if st := adm.do("POST", "/audiences/preview", map[string]any{"condition": map[string]any{"trait": map[string]any{"key": "plan", "op": "like", "value": "p"}}}, &perr); st != 400 || !strings.Contains(perr.Message, "condition.trait.op") {
		t.Fatalf("invalid preview: %d %+v", st, perr)
	}
	// Nothing was saved: the list is as before, and no profile is in a "pro_users" audience.
	if after := adm.audiences(); !reflect.DeepEqual(after, before) {
		t.Fatalf("audiences after the preview: %+v, before %+v", after, before)
	}
	if got := segAudienceKeys(t, api, "pv-1"); len(got) != 0 {
		t.Fatalf("pv-1 is in %v after a preview", got)
	}

	proID := adm.createAudience("pro_users", draft["condition"].(map[string]any))
	adm.waitLive(proID)
	for id, want := range map[string][]string{proID: wantPro, freeID: {pids["pv-2"]}} {
		members := adm.members(id)
		if !reflect.DeepEqual(members, want) {
			t.Fatalf("members of %s: %v, want %v", id, members, want)
		}
		if v := adm.audience(id); v.Size != len(members) {
			t.Fatalf("size of %s: %d, members %d", id, v.Size, len(members))
		}
	}
	sizes := map[string]int{}
	for _, v := range adm.audiences() {
		sizes[v.Key] = v.Size
	}
	if !reflect.DeepEqual(sizes, map[string]int{"free_users": 1, "pro_users": p.Matched}) {
		t.Fatalf("sizes in the list: %v, want free_users 1, pro_users %d (the preview's count)", sizes, p.Matched)
	}
	// The saved audience's preview still agrees with its size.
	if again, st := adm.preview("", map[string]any{"condition": map[string]any{"audience": map[string]any{"key": "pro_users"}}}); st != 200 || again.Matched != 2 {
		t.Fatalf("preview of membership of pro_users: %d %+v", st, again)
	}
	for u, want := range map[string][]string{"pv-1": {"pro_users"}, "pv-2": {"free_users"}, "pv-3": {"pro_users"}, "pv-4": {}} {
		if got := segAudienceKeys(t, api, u); !reflect.DeepEqual(got, want) {
			t.Fatalf("Profile API audiences of %s: %v, want %v", u, got, want)
		}
	}
}

// TestSegmentsEventSoonAfterNewAudienceKeepsMembership guards a fixed bug: the segments handler
// caches the definitions for 10 s, and a profile evaluated with a cache older than a new audience
// used to drop that audience's membership ("forget definitions that no longer exist") silently,
// after the backfill had put the profile in it and the destination had got Audience Entered.
func TestSegmentsEventSoonAfterNewAudienceKeepsMembership(t *testing.T) {
	stack, _, writeKey := startStack(t)
	adm := newSegAdmin(t, stack.URL)
	api := newScnAPI(t, stack.URL)
	adm.createTrait(map[string]any{"key": "events_seen", "name": "Events seen", "kind": "event_count", "event": map[string]any{"name": "*"}})
	const u = "stale-1"
	now := time.Now().UTC()
	scnSend(t, stack.URL, writeKey, 50, segOrder("stale-o1", u, day, now, 10, "pen", "office"))
	segSettle(t, "the first event seen", func() (bool, string) {
		got := segComputedOnceKnown(t, api, u)
		return got["events_seen"] == 1.0, fmt.Sprint(got)
	})
	// The handler's definitions were loaded with the first event, before this audience.
	id := adm.createAudience("buyers", map[string]any{"event": map[string]any{"name": "Order Completed"}})
	adm.waitLive(id)
	if got := segAudienceKeys(t, api, u); !reflect.DeepEqual(got, []string{"buyers"}) {
		t.Fatalf("after the backfill: %v", got)
	}
	scnSend(t, stack.URL, writeKey, 50, segTrack("stale-v1", u, "Product Viewed", time.Minute, now))
	segSettle(t, "the second event seen", func() (bool, string) {
		got := segClassTraits(t, api, u, "computed_trait")
		return got["events_seen"] == 2.0, fmt.Sprint(got)
	})
	if got := segAudienceKeys(t, api, u); !reflect.DeepEqual(got, []string{"buyers"}) {
		t.Fatalf("an unrelated event evaluated with cached definitions dropped the membership: audiences %v, members %v", got, adm.members(id))
	}
}

// TestSegmentsZeroCountWhetherBeforeOrAfterDefinition guards a fixed inconsistency: an
// event_count was 0 for a profile without matching events that existed when the trait was
// defined (the backfill evaluates everything), but absent for one that appeared afterwards with
// only other events, so "computedTrait order_count eq 0" matched one and not the other.
func TestSegmentsZeroCountWhetherBeforeOrAfterDefinition(t *testing.T) {
	stack, _, writeKey := startStack(t)
	adm := newSegAdmin(t, stack.URL)
	api := newScnAPI(t, stack.URL)
	now := time.Now().UTC()
	audID := adm.createAudience("seen", map[string]any{"event": map[string]any{"name": "*"}})
	adm.waitLive(audID)
	scnSend(t, stack.URL, writeKey, 50, segTrack("zc-v1", "zc-early", "Product Viewed", time.Minute, now))
	segSettle(t, "zc-early seen", func() (bool, string) {
		ok := false
		if _, known := api.meta("user_id:zc-early"); known {
			ok = reflect.DeepEqual(segAudienceKeys(t, api, "zc-early"), []string{"seen"})
		}
		return ok, ""
	})
	ctID := adm.createTrait(map[string]any{"key": "order_count", "name": "Order count", "kind": "event_count", "event": map[string]any{"name": "Order Completed"}})
	eventually(t, "order_count live", segWait, func() bool { return adm.traitStatus(ctID) == "live" })
	time.Sleep(11 * time.Second) // let the handler's definition cache expire
	scnSend(t, stack.URL, writeKey, 50, segTrack("zc-v2", "zc-late", "Product Viewed", time.Minute, now))
	segSettle(t, "zc-late seen", func() (bool, string) {
		ok := false
		if _, known := api.meta("user_id:zc-late"); known {
			ok = reflect.DeepEqual(segAudienceKeys(t, api, "zc-late"), []string{"seen"})
		}
		return ok, ""
	})
	early := segClassTraits(t, api, "zc-early", "computed_trait")
	late := segClassTraits(t, api, "zc-late", "computed_trait")
	if !reflect.DeepEqual(early, late) {
		t.Fatalf("two profiles with one Product Viewed each and no order: %v (before the definition) vs %v (after)", early, late)
	}
}
