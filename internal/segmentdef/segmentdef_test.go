package segmentdef_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/serverless-cdp/cdp/internal/segmentdef"
)

// TestValidate: bad definitions name the offending field; a good trait gets its defaults.
func TestValidate(t *testing.T) {
	for _, c := range []struct {
		def   interface{ Validate() error }
		field string
	}{
		{&segmentdef.ComputedTrait{Name: "Orders", Kind: "total", Event: segmentdef.EventFilter{Name: "x"}}, "kind"},
		{&segmentdef.ComputedTrait{Name: "Orders", Kind: segmentdef.KindCount}, "event.name"},
		{&segmentdef.ComputedTrait{Name: "Rev", Kind: segmentdef.KindSum, Event: segmentdef.EventFilter{Name: "x"}}, "property"},
		{&segmentdef.ComputedTrait{Name: "R", Kind: segmentdef.KindRFMMonetary, Thresholds: []float64{1, 3, 2, 4}}, "thresholds"},
		{&segmentdef.Audience{Name: "A", Condition: segmentdef.Condition{Trait: &segmentdef.Predicate{Key: "x", Op: "like"}}}, "condition.trait.op"},
		{&segmentdef.Audience{Name: "A", Condition: segmentdef.Condition{Trait: &segmentdef.Predicate{Key: "x", Op: "gt", Value: json.RawMessage(`true`)}}}, "condition.trait.value"},
		{&segmentdef.Audience{Name: "A", Condition: segmentdef.Condition{Audience: &segmentdef.AudienceRef{Key: "b"}}}, "condition.audience.key"},
		{&segmentdef.Audience{Name: "A"}, "condition"},
	} {
		var ve *segmentdef.ValidationError
		if err := c.def.Validate(); !errors.As(err, &ve) || ve.Field != c.field {
			t.Errorf("%+v: %v, want a ValidationError on %s", c.def, err, c.field)
		}
	}
	tr := segmentdef.ComputedTrait{Name: "Lifetime Value", Kind: segmentdef.KindLifetimeValue}
	if err := tr.Validate(); err != nil || tr.Key != "lifetime_value" || tr.Event.Name != segmentdef.DefaultPurchaseEvent || tr.Property != segmentdef.DefaultRevenueProperty {
		t.Fatalf("defaults: %+v %v", tr, err)
	}
}

// TestMatches: an event filter checks the name, then its predicates on the properties, which it
// reads only when it has predicates.
func TestMatches(t *testing.T) {
	f := segmentdef.EventFilter{Name: "Order Completed", Where: []segmentdef.Predicate{{Key: "cart.total", Op: "gte", Value: json.RawMessage(`100`)}}}
	a := segmentdef.Audience{Name: "A", Condition: segmentdef.Condition{Event: &segmentdef.EventCondition{EventFilter: f}}}
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	f = a.Condition.Event.EventFilter
	props := func(v float64) func() map[string]any {
		return func() map[string]any { return map[string]any{"cart": map[string]any{"total": v}} }
	}
	if !f.Matches("Order Completed", props(120)) || f.Matches("Order Completed", props(80)) || f.Matches("Viewed", props(120)) {
		t.Fatal("filter")
	}
	all := segmentdef.EventFilter{Name: "*"}
	if !all.Matches("Viewed", func() map[string]any { t.Fatal("properties read"); return nil }) {
		t.Fatal("* matches every event")
	}
	n := 0
	a.Condition.Walk(func(*segmentdef.Condition) { n++ })
	if n != 1 {
		t.Fatalf("walked %d nodes", n)
	}
}

// TestEventTypes: a filter selects track events by default, page or screen views by name when
// typed, and refuses other types.
func TestEventTypes(t *testing.T) {
	none := func() map[string]any { return nil }
	track := segmentdef.EventFilter{Name: "Pricing"}
	page := segmentdef.EventFilter{Type: segmentdef.TypePage, Name: "Pricing"}
	anyScreen := segmentdef.EventFilter{Type: segmentdef.TypeScreen, Name: "*"}
	if !track.MatchesEvent("track", "Pricing", none) || track.MatchesEvent("page", "Pricing", none) ||
		!page.MatchesEvent("page", "Pricing", none) || page.MatchesEvent("track", "Pricing", none) ||
		!anyScreen.MatchesEvent("screen", "Home", none) || anyScreen.MatchesEvent("page", "Home", none) {
		t.Fatal("type matching")
	}
	bad := segmentdef.ComputedTrait{Name: "X", Kind: segmentdef.KindCount, Event: segmentdef.EventFilter{Type: "identify", Name: "*"}}
	var ve *segmentdef.ValidationError
	if err := bad.Validate(); !errors.As(err, &ve) || ve.Field != "event.type" {
		t.Fatalf("identify filter: %v", err)
	}
	a := segmentdef.Audience{Name: "A", Condition: segmentdef.Condition{Event: &segmentdef.EventCondition{EventFilter: segmentdef.EventFilter{Type: "Page", Name: "x"}}}}
	if err := a.Validate(); !errors.As(err, &ve) || ve.Field != "condition.event.type" {
		t.Fatalf("condition type: %v", err)
	}
}
