package segment

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func ev(id, name string, ago time.Duration, props string) Event {
	e := Event{ID: id, Name: name, T: t0.Add(-ago)}
	if props != "" {
		e.P = json.RawMessage(props)
	}
	return e
}

const day = 24 * time.Hour

func purchases() []Event {
	evs := []Event{
		ev("1", "Order Completed", 40*day, `{"revenue":100,"category":"shoes"}`),
		ev("2", "Order Completed", 10*day, `{"revenue":"25.5","category":"hats"}`),
		ev("3", "Product Viewed", 5*day, `{"category":"shoes"}`),
		ev("4", "Order Completed", 2*day, `{"revenue":50,"category":"shoes"}`),
		ev("5", "Order Completed", 1*time.Hour, `{"revenue":10,"category":"socks","coupon":true}`),
	}
	return evs
}

func mustTrait(t *testing.T, js string) *ComputedTrait {
	t.Helper()
	var c ComputedTrait
	if err := json.Unmarshal([]byte(js), &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("validate %s: %v", js, err)
	}
	return &c
}

func TestComputeEachKind(t *testing.T) {
	evs := purchases()
	cases := []struct {
		def  string
		want any
	}{
		{`{"name":"orders","kind":"event_count","event":{"name":"Order Completed"}}`, 4.0},
		{`{"name":"orders 30d","kind":"event_count","event":{"name":"Order Completed"},"window":{"days":30}}`, 3.0},
		{`{"name":"orders 24h","kind":"event_count","event":{"name":"Order Completed"},"window":{"hours":24}}`, 1.0},
		{`{"name":"any 7d","kind":"event_count","event":{"name":"*"},"window":{"days":7}}`, 3.0},
		{`{"name":"big orders","kind":"event_count","event":{"name":"Order Completed","where":[{"key":"revenue","op":"gte","value":50}]}}`, 2.0},
		{`{"name":"rev","kind":"sum","event":{"name":"Order Completed"},"property":"revenue"}`, 185.5},
		{`{"name":"rev 30d","kind":"sum","event":{"name":"Order Completed"},"property":"revenue","window":{"days":30}}`, 85.5},
		{`{"name":"avg","kind":"avg","event":{"name":"Order Completed"},"property":"revenue"}`, 46.375},
		{`{"name":"min","kind":"min","event":{"name":"Order Completed"},"property":"revenue"}`, 10.0},
		{`{"name":"max","kind":"max","event":{"name":"Order Completed"},"property":"revenue"}`, 100.0},
		{`{"name":"max none","kind":"max","event":{"name":"Refund"},"property":"revenue"}`, nil},
		{`{"name":"fav","kind":"most_frequent","event":{"name":"*"},"property":"category"}`, "shoes"},
		{`{"name":"fav 7d","kind":"most_frequent","event":{"name":"Order Completed"},"property":"category","window":{"days":7}}`, "shoes"},
		{`{"name":"first cat","kind":"first","event":{"name":"Order Completed"},"property":"category"}`, "shoes"},
		{`{"name":"last cat","kind":"last","event":{"name":"Order Completed"},"property":"category"}`, "socks"},
		{`{"name":"first seen","kind":"first","event":{"name":"*"}}`, t0.Add(-40 * day).Format(time.RFC3339Nano)},
		{`{"name":"cats","kind":"unique_list","event":{"name":"*"},"property":"category"}`, []any{"hats", "shoes", "socks"}},
		{`{"name":"ncats","kind":"unique_count","event":{"name":"*"},"property":"category"}`, 3.0},
		{`{"name":"ncats 3d","kind":"unique_count","event":{"name":"*"},"property":"category","window":{"days":3}}`, 2.0},
		{`{"name":"r","kind":"rfm_recency"}`, 5.0},
		{`{"name":"f","kind":"rfm_frequency"}`, 3.0}, // 4 purchases: ≥2, ≥3 → 3
		{`{"name":"m","kind":"rfm_monetary"}`, 2.0},  // 185.5: ≥50 → 2
		{`{"name":"ltv","kind":"lifetime_value"}`, 185.5},
	}
	for _, tc := range cases {
		c := mustTrait(t, tc.def)
		got := computeEvents(c, evs, t0)
		var norm any
		_ = json.Unmarshal(toJSON(got), &norm)
		if !reflect.DeepEqual(norm, tc.want) {
			t.Errorf("%s: got %#v, want %#v", c.Name, norm, tc.want)
		}
	}
}

func TestRFMRecencyMovesWithTime(t *testing.T) {
	c := mustTrait(t, `{"name":"r","kind":"rfm_recency"}`)
	evs := []Event{ev("1", "Order Completed", 0, `{"revenue":5}`)}
	for _, tc := range []struct {
		later time.Duration
		want  float64
	}{{day, 5}, {8 * day, 4}, {31 * day, 3}, {100 * day, 2}, {200 * day, 1}} {
		if got := computeEvents(c, evs, t0.Add(tc.later)); got != tc.want {
			t.Errorf("after %v: %v, want %v", tc.later, got, tc.want)
		}
	}
	s := traitSpec(c)
	if next := recencyChange(c, accOf(s, evs, t0).at(s, t0), t0); !next.Equal(t0.Add(7 * day)) {
		t.Errorf("next change %v", next)
	}
	if computeEvents(c, nil, t0) != nil {
		t.Error("no purchase should have no recency")
	}
}

func TestValidationErrors(t *testing.T) {
	for _, tc := range []struct{ def, field string }{
		{`{"kind":"event_count","event":{"name":"x"}}`, "name"},
		{`{"name":"x","kind":"median","event":{"name":"x"}}`, "kind"},
		{`{"name":"x","kind":"sum","event":{"name":"x"}}`, "property"},
		{`{"name":"x","kind":"event_count","event":{}}`, "event.name"},
		{`{"name":"x","kind":"event_count","event":{"name":"x"},"window":{"days":-1}}`, "window"},
		{`{"name":"x","key":"Bad Key","kind":"event_count","event":{"name":"x"}}`, "key"},
		{`{"name":"x","kind":"event_count","event":{"name":"x","where":[{"key":"a","op":"like","value":1}]}}`, "event.where[0].op"},
		{`{"name":"x","kind":"event_count","event":{"name":"x","where":[{"key":"a","op":"in","value":1}]}}`, "event.where[0].value"},
		{`{"name":"x","kind":"rfm_frequency","thresholds":[3,2,1,0]}`, "thresholds"},
	} {
		var c ComputedTrait
		if err := json.Unmarshal([]byte(tc.def), &c); err != nil {
			t.Fatal(err)
		}
		err := c.Validate()
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Field != tc.field {
			t.Errorf("%s: got %v, want an error on %s", tc.def, err, tc.field)
		}
	}
	for _, tc := range []struct{ cond, field string }{
		{`{}`, "condition"},
		{`{"and":[]}`, "condition.and"},
		{`{"trait":{"key":"a","op":"eq"}}`, "condition.trait.value"},
		{`{"or":[{"trait":{"key":"a","op":"exists"}},{"not":{"event":{"name":"x","count":{"op":"more","n":1}}}}]}`, "condition.or[1].not.event.count.op"},
		{`{"event":{"name":"x","within":{"days":1},"between":{"from":"2024-01-01T00:00:00Z","to":"2024-02-01T00:00:00Z"}}}`, "condition.event"},
		{`{"event":{"name":"x","between":{"from":"2024-03-01T00:00:00Z","to":"2024-02-01T00:00:00Z"}}}`, "condition.event.between"},
		{`{"trait":{"key":"a","op":"exists"},"event":{"name":"x"}}`, "condition"},
	} {
		a := &Audience{Name: "A"}
		if err := json.Unmarshal([]byte(tc.cond), &a.Condition); err != nil {
			t.Fatal(err)
		}
		err := a.Validate()
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Field != tc.field {
			t.Errorf("%s: got %v, want an error on %s", tc.cond, err, tc.field)
		}
	}
}

func TestCatalogRejectsBadReferences(t *testing.T) {
	a := aud(t, "a1", "A", `{"audience":{"id":"a2"}}`)
	b := aud(t, "a2", "B", `{"audience":{"id":"a1"}}`)
	if _, err := NewCatalog(nil, []*Audience{a, b}); err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Errorf("cycle: %v", err)
	}
	c := aud(t, "a3", "C", `{"computedTrait":{"key":"nope","op":"gt","value":1}}`)
	if _, err := NewCatalog(nil, []*Audience{c}); err == nil || !strings.Contains(err.Error(), "unknown computed trait") {
		t.Errorf("unknown trait: %v", err)
	}
	d := aud(t, "a4", "D", `{"audience":{"id":"zzz"}}`)
	if _, err := NewCatalog(nil, []*Audience{d}); err == nil || !strings.Contains(err.Error(), "unknown audience") {
		t.Errorf("unknown audience: %v", err)
	}
	e1, e2 := aud(t, "a5", "Same", `{"trait":{"key":"a","op":"exists"}}`), aud(t, "a6", "Same", `{"trait":{"key":"a","op":"exists"}}`)
	if _, err := NewCatalog(nil, []*Audience{e1, e2}); err == nil || !strings.Contains(err.Error(), "already used") {
		t.Errorf("duplicate key: %v", err)
	}
}

func aud(t testing.TB, id, name, cond string) *Audience {
	t.Helper()
	a := &Audience{ID: id, Name: name}
	if err := json.Unmarshal([]byte(cond), &a.Condition); err != nil {
		t.Fatal(err)
	}
	return a
}

func stateWith(traits string, evs []Event) *State {
	st := NewState("p1")
	if traits != "" {
		var m map[string]json.RawMessage
		_ = json.Unmarshal([]byte(traits), &m)
		st.setTraits(m)
	}
	st.Legacy = evs // the event conditions' accumulators are built from them (withAggs)
	return st
}

func TestConditions(t *testing.T) {
	st := stateWith(`{"plan":"pro","age":31,"email":"ann@example.com","tags":["vip","beta"],"address":{"city":"Paris"},"signup":"2024-05-01T00:00:00Z"}`, purchases())
	st.Computed["ltv"] = json.RawMessage(`185.5`)
	st.Members["gold"] = &Membership{In: true}
	cases := []struct {
		cond string
		want bool
	}{
		{`{"trait":{"key":"plan","op":"eq","value":"pro"}}`, true},
		{`{"trait":{"key":"plan","op":"neq","value":"pro"}}`, false},
		{`{"trait":{"key":"missing","op":"neq","value":"pro"}}`, true},
		{`{"trait":{"key":"age","op":"gt","value":30}}`, true},
		{`{"trait":{"key":"age","op":"gte","value":31}}`, true},
		{`{"trait":{"key":"age","op":"lt","value":31}}`, false},
		{`{"trait":{"key":"age","op":"lte","value":"31"}}`, true},
		{`{"trait":{"key":"signup","op":"lt","value":"2024-06-01T00:00:00Z"}}`, true},
		{`{"trait":{"key":"email","op":"contains","value":"@example"}}`, true},
		{`{"trait":{"key":"tags","op":"contains","value":"vip"}}`, true},
		{`{"trait":{"key":"email","op":"starts_with","value":"bob"}}`, false},
		{`{"trait":{"key":"plan","op":"exists"}}`, true},
		{`{"trait":{"key":"nope","op":"exists","value":false}}`, true},
		{`{"trait":{"key":"plan","op":"in","value":["free","pro"]}}`, true},
		{`{"trait":{"key":"address.city","op":"eq","value":"Paris"}}`, true},
		{`{"computedTrait":{"key":"ltv","op":"gte","value":100}}`, true},
		{`{"audience":{"id":"gold"}}`, true},
		{`{"audience":{"id":"silver"}}`, false},
		{`{"event":{"name":"Order Completed"}}`, true},
		{`{"event":{"name":"Order Completed","count":{"op":"at_least","n":3},"within":{"days":30}}}`, true},
		{`{"event":{"name":"Order Completed","count":{"op":"at_least","n":4},"within":{"days":30}}}`, false},
		{`{"event":{"name":"Order Completed","count":{"op":"at_most","n":1},"within":{"days":7}}}`, false},
		{`{"event":{"name":"Order Completed","count":{"op":"exactly","n":2},"within":{"days":7}}}`, true},
		{`{"event":{"name":"Order Completed","where":[{"key":"coupon","op":"eq","value":true}]}}`, true},
		{`{"event":{"name":"Order Completed","where":[{"key":"revenue","op":"gt","value":60}],"within":{"days":30}}}`, false},
		{`{"event":{"name":"Order Completed","between":{"from":"2025-01-01T00:00:00Z","to":"2025-01-31T00:00:00Z"}}}`, true},
		{`{"event":{"name":"Order Completed","between":{"from":"2025-02-01T00:00:00Z","to":"2025-02-15T00:00:00Z"}}}`, false},
		{`{"not":{"event":{"name":"Refund Issued"}}}`, true},
		{`{"and":[{"event":{"name":"Product Viewed","within":{"days":7}}},{"not":{"event":{"name":"Order Completed","within":{"hours":12}}}}]}`, false},
		{`{"or":[{"trait":{"key":"plan","op":"eq","value":"free"}},{"and":[{"trait":{"key":"age","op":"gt","value":18}},{"not":{"trait":{"key":"tags","op":"contains","value":"banned"}}}]}]}`, true},
		{`{"not":{"or":[{"trait":{"key":"plan","op":"eq","value":"free"}},{"audience":{"id":"gold"}}]}}`, false},
	}
	for _, tc := range cases {
		a := aud(t, "x", "X", tc.cond)
		if err := a.Validate(); err != nil {
			t.Fatalf("%s: %v", tc.cond, err)
		}
		if got := evalCondition(&a.Condition, newEvalCtx(withAggs(t, st, &a.Condition, t0), t0)); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.cond, got, tc.want)
		}
	}
}

func catalog(t testing.TB, traits []string, auds ...*Audience) *Catalog {
	t.Helper()
	var cts []*ComputedTrait
	for i, js := range traits {
		var c ComputedTrait
		if err := json.Unmarshal([]byte(js), &c); err != nil {
			t.Fatal(err)
		}
		c.ID = fmt.Sprintf("ct%d", i)
		cts = append(cts, &c)
	}
	c, err := NewCatalog(cts, auds)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestEvaluateTransitionsAndAudienceOfAudience(t *testing.T) {
	buyers := aud(t, "buyers", "Recent buyers", `{"event":{"name":"Order Completed","within":{"days":30}}}`)
	vip := aud(t, "vip", "VIP", `{"and":[{"audience":{"id":"buyers"}},{"computedTrait":{"key":"spend","op":"gte","value":100}}]}`)
	lapsed := aud(t, "lapsed", "Lapsed", `{"not":{"audience":{"id":"buyers"}}}`)
	cat := catalog(t, []string{`{"name":"spend","kind":"sum","event":{"name":"Order Completed"},"property":"revenue","window":{"days":30}}`}, vip, buyers, lapsed)

	st := NewState("p1")
	// A new profile with no events matches "lapsed" (empty-profile audiences are checked).
	res := cat.Evaluate(st, Input{ChangedTraits: []string{"plan"}}, t0)
	if got := st.InAudiences(); !reflect.DeepEqual(got, []string{"lapsed"}) {
		t.Fatalf("new profile in %v", got)
	}
	st.Ver = 1
	e1 := ev("m1", "Order Completed", 0, `{"revenue":120}`)
	added := cat.addEvents(st, []Event{e1}, t0)
	res = cat.Evaluate(st, Input{NewEvents: added}, t0)
	if got := st.InAudiences(); !reflect.DeepEqual(got, []string{"buyers", "vip"}) {
		t.Fatalf("after purchase in %v", got)
	}
	kinds := map[string]string{}
	for _, r := range res.Records {
		if r.Audience != nil {
			kinds[r.Audience.ID] = r.Kind
		}
	}
	if kinds["buyers"] != "audience_entered" || kinds["vip"] != "audience_entered" || kinds["lapsed"] != "audience_exited" {
		t.Fatalf("records %v", kinds)
	}
	if string(res.ChangedComputed["spend"]) != "120" {
		t.Fatalf("computed %v", res.ChangedComputed)
	}
	// The purchase counts until the end of its day's bucket plus 30 days.
	if want := t0.Add(30*day + 12*time.Hour); !st.NextAt.Equal(want) {
		t.Fatalf("next at %v, want %v", st.NextAt, want)
	}
	// Nothing new: nothing evaluated, no transition.
	if res := cat.Evaluate(st, Input{}, t0); len(res.Records) != 0 || res.Evaluated != 0 {
		t.Fatalf("idle evaluation: %+v", res)
	}
	// Just before the window's edge nothing changes; at it everything flips back, once.
	if res := cat.Evaluate(st, Input{All: true}, st.NextAt.Add(-time.Nanosecond)); len(res.Transitions) != 0 {
		t.Fatalf("transitions before the edge %+v", res.Transitions)
	}
	later := st.NextAt
	res = cat.Evaluate(st, Input{All: true}, later)
	if got := st.InAudiences(); !reflect.DeepEqual(got, []string{"lapsed"}) {
		t.Fatalf("after window in %v", got)
	}
	if len(res.Transitions) != 3 || !st.NextAt.IsZero() {
		t.Fatalf("transitions %+v next %v", res.Transitions, st.NextAt)
	}
	if res := cat.Evaluate(st, Input{All: true}, later.Add(time.Minute)); len(res.Transitions) != 0 {
		t.Fatalf("second pass transitions %+v", res.Transitions)
	}
}

func TestIndexSkipsUnrelatedAudiences(t *testing.T) {
	var auds []*Audience
	for i := range 50 {
		auds = append(auds, aud(t, fmt.Sprintf("a%d", i), fmt.Sprintf("A%d", i), fmt.Sprintf(`{"event":{"name":"E%d"}}`, i)))
	}
	auds = append(auds, aud(t, "plan", "Plan", `{"trait":{"key":"plan","op":"eq","value":"pro"}}`))
	cat := catalog(t, nil, auds...)
	st := NewState("p")
	st.Ver = 1
	res := cat.Evaluate(st, Input{NewEvents: cat.addEvents(st, []Event{ev("m", "E7", 0, "")}, t0)}, t0)
	if res.Evaluated != 1 || !st.Members["a7"].In {
		t.Fatalf("evaluated %d", res.Evaluated)
	}
	res = cat.Evaluate(st, Input{ChangedTraits: []string{"plan"}}, t0)
	if res.Evaluated != 1 {
		t.Fatalf("evaluated %d for a trait change", res.Evaluated)
	}
}
