// Package consent is the contract for consent preferences (Segment's
// `context.consent.categoryPreferences`): how they are read from an event, how a profile keeps
// them, and how a destination's categories are checked against them. The identity stage keeps
// a profile's consent, the segments stage carries it into activation records, and the
// activation stage enforces it; all three use this package, none imports another.
package consent

import (
	"encoding/json"
	"sort"
	"time"
)

// Limits on what an event may carry (checked where preferences are read; anything beyond is
// ignored, never an error).
const (
	MaxCategories    = 64  // categories kept per event and per profile
	MaxCategoryBytes = 128 // bytes of one category name
)

// Preferences maps a consent category to whether the person agreed to it.
type Preferences map[string]bool

// FromContext reads `consent.categoryPreferences` from an event's context. ok is false when the
// event carries no preferences (no context, no consent object, or not an object of booleans:
// non-boolean values are skipped). Names over MaxCategoryBytes are skipped; at most
// MaxCategories are kept (in sorted order).
func FromContext(ctx json.RawMessage) (Preferences, bool) {
	if len(ctx) == 0 {
		return nil, false
	}
	var c struct {
		Consent struct {
			CategoryPreferences map[string]json.RawMessage `json:"categoryPreferences"`
		} `json:"consent"`
	}
	if json.Unmarshal(ctx, &c) != nil || c.Consent.CategoryPreferences == nil {
		return nil, false
	}
	keys := make([]string, 0, len(c.Consent.CategoryPreferences))
	for k := range c.Consent.CategoryPreferences {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	p := Preferences{}
	for _, k := range keys {
		var b bool
		if len(k) > MaxCategoryBytes || len(p) >= MaxCategories || json.Unmarshal(c.Consent.CategoryPreferences[k], &b) != nil {
			continue
		}
		p[k] = b
	}
	return p, true
}

// Profile is the consent a profile holds: per category the latest preference by event time.
type Profile struct {
	Categories map[string]Category `json:"categories"`
}

// Category is one category's preference and the timestamp of the event that set it.
type Category struct {
	Granted bool      `json:"granted"`
	At      time.Time `json:"at"`
}

// Apply merges preferences sent by an event at time at: per category, the newest by timestamp
// wins (an older event never overwrites a newer preference; at a tie the later call wins). It
// reports whether anything changed.
func (p *Profile) Apply(prefs Preferences, at time.Time) bool {
	changed := false
	for k, v := range prefs {
		cur, ok := p.Categories[k]
		if ok && cur.At.After(at) {
			continue
		}
		if !ok && len(p.Categories) >= MaxCategories {
			continue
		}
		if p.Categories == nil {
			p.Categories = map[string]Category{}
		}
		if !ok || cur.Granted != v || !cur.At.Equal(at) {
			changed = changed || !ok || cur.Granted != v
			p.Categories[k] = Category{Granted: v, At: at}
		}
	}
	return changed
}

// Preferences returns the profile's current preferences (nil when it holds none).
func (p *Profile) Preferences() Preferences {
	if p == nil || len(p.Categories) == 0 {
		return nil
	}
	out := make(Preferences, len(p.Categories))
	for k, c := range p.Categories {
		out[k] = c.Granted
	}
	return out
}

// Allows reports whether a message may go to a destination that declares categories
// (consentCategories) and require (requireConsent), given the preferences that apply (the
// event's own for a forwarded event, the profile's stored ones for audience and trait
// activations; known is false when there are none). Segment's rule: a destination with no
// categories receives everything; without preferences, categories are not enforced unless the
// destination requires consent; with preferences, every category must be true.
func Allows(categories []string, require bool, prefs Preferences, known bool) bool {
	if !known {
		return !require
	}
	for _, c := range categories {
		if !prefs[c] {
			return false
		}
	}
	return true
}
