package segment

import (
	"encoding/json"

	"github.com/serverless-cdp/cdp/internal/segmentdef"
)

// The definitions' wire form, validation and predicate matching are package segmentdef (shared
// with the cdp CLI, which validates config files locally); these names keep segment's API.
type (
	ComputedTrait   = segmentdef.ComputedTrait
	Audience        = segmentdef.Audience
	Condition       = segmentdef.Condition
	AudienceRef     = segmentdef.AudienceRef
	EventCondition  = segmentdef.EventCondition
	EventFilter     = segmentdef.EventFilter
	Predicate       = segmentdef.Predicate
	Window          = segmentdef.Window
	Count           = segmentdef.Count
	Period          = segmentdef.Period
	ValidationError = segmentdef.ValidationError
)

// Kinds of computed traits.
const (
	KindCount         = segmentdef.KindCount
	KindSum           = segmentdef.KindSum
	KindAvg           = segmentdef.KindAvg
	KindMin           = segmentdef.KindMin
	KindMax           = segmentdef.KindMax
	KindMostFrequent  = segmentdef.KindMostFrequent
	KindFirst         = segmentdef.KindFirst
	KindLast          = segmentdef.KindLast
	KindUniqueList    = segmentdef.KindUniqueList
	KindUniqueCount   = segmentdef.KindUniqueCount
	KindRFMRecency    = segmentdef.KindRFMRecency
	KindRFMFrequency  = segmentdef.KindRFMFrequency
	KindRFMMonetary   = segmentdef.KindRFMMonetary
	KindLifetimeValue = segmentdef.KindLifetimeValue
)

// Defaults of the built-in RFM traits, definition statuses, count and predicate operators.
const (
	DefaultPurchaseEvent   = segmentdef.DefaultPurchaseEvent
	DefaultRevenueProperty = segmentdef.DefaultRevenueProperty
	MaxUniqueValues        = segmentdef.MaxUniqueValues

	StatusComputing = segmentdef.StatusComputing
	StatusLive      = segmentdef.StatusLive

	AtLeast = segmentdef.AtLeast
	AtMost  = segmentdef.AtMost
	Exactly = segmentdef.Exactly

	OpEq         = segmentdef.OpEq
	OpNeq        = segmentdef.OpNeq
	OpGt         = segmentdef.OpGt
	OpGte        = segmentdef.OpGte
	OpLt         = segmentdef.OpLt
	OpLte        = segmentdef.OpLte
	OpContains   = segmentdef.OpContains
	OpStartsWith = segmentdef.OpStartsWith
	OpExists     = segmentdef.OpExists
	OpIn         = segmentdef.OpIn
)

// Default RFM cut points (four ascending thresholds make five scores).
var (
	DefaultRecencyDays       = segmentdef.DefaultRecencyDays
	DefaultFrequencyCounts   = segmentdef.DefaultFrequencyCounts
	DefaultMonetaryThreshold = segmentdef.DefaultMonetaryThreshold
)

// KeyFromName makes a snake_case key from a display name.
func KeyFromName(name string) string { return segmentdef.KeyFromName(name) }

// matches reports whether an event passes the filter.
func matches(f *EventFilter, e *Event) bool { return f.MatchesEvent(e.eventType(), e.Name, e.props) }

func lookup(obj map[string]any, key string) (any, bool) { return segmentdef.Lookup(obj, key) }

func toNumber(v any) (float64, bool) { return segmentdef.ToNumber(v) }

func scalarString(v any) string { return segmentdef.ScalarString(v) }

// clone deep-copies a definition through JSON (definitions are small and cloned rarely).
func clone[T any](v *T) *T {
	b, _ := json.Marshal(v)
	out := new(T)
	_ = json.Unmarshal(b, out)
	return out
}
