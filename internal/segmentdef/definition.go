// Package segmentdef is the definitions of computed traits and audiences: their wire form (the
// admin API's bodies and the computedTraits and audiences of a cdp config file), their
// validation and the matching of predicates and event filters. The segments stage (package
// segment) evaluates them over profiles; the cdp CLI (package config) validates config files
// with them. It imports no server code, so the CLI links none.
package segmentdef

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Kinds of computed traits.
const (
	KindCount         = "event_count"   // number of matching events
	KindSum           = "sum"           // sum of a numeric property
	KindAvg           = "avg"           // mean of a numeric property
	KindMin           = "min"           // smallest value of a numeric property
	KindMax           = "max"           // largest value of a numeric property
	KindMostFrequent  = "most_frequent" // the property value seen most often (ties: the smallest)
	KindFirst         = "first"         // property of the earliest matching event (its time if no property)
	KindLast          = "last"          // property of the latest matching event (its time if no property)
	KindUniqueList    = "unique_list"   // sorted distinct property values (at most MaxUniqueValues)
	KindUniqueCount   = "unique_count"  // number of distinct property values
	KindRFMRecency    = "rfm_recency"   // 1–5: 5 = purchased recently
	KindRFMFrequency  = "rfm_frequency" // 1–5: 5 = purchases most often
	KindRFMMonetary   = "rfm_monetary"  // 1–5: 5 = spends most
	KindLifetimeValue = "lifetime_value"

	// Predictive kinds: their value is a model's score (package predict), set when a trained
	// model is published and kept current as the profile's events arrive.
	KindPurchaseLikelihood = "purchase_likelihood" // P(the goal event within the horizon)
	KindChurnLikelihood    = "churn_likelihood"    // P(no activity within the horizon)
	KindPredictedLTV       = "predicted_ltv"       // expected spend within the horizon
	KindReturnLikelihood   = "return_likelihood"   // P(an order is returned or refunded)
	KindNextBestProduct    = "next_best_product"   // top-K product ids
)

// Defaults of the built-in RFM traits.
const (
	DefaultPurchaseEvent   = "Order Completed"
	DefaultRevenueProperty = "revenue"
	MaxUniqueValues        = 100
	maxWindow              = 10 * 365 * 24 * time.Hour
)

// Default RFM cut points (four ascending thresholds make five scores).
var (
	DefaultRecencyDays       = []float64{7, 30, 90, 180}
	DefaultFrequencyCounts   = []float64{2, 3, 5, 10}
	DefaultMonetaryThreshold = []float64{50, 200, 500, 1000}
)

var kinds = map[string]bool{KindCount: true, KindSum: true, KindAvg: true, KindMin: true, KindMax: true,
	KindMostFrequent: true, KindFirst: true, KindLast: true, KindUniqueList: true, KindUniqueCount: true,
	KindRFMRecency: true, KindRFMFrequency: true, KindRFMMonetary: true, KindLifetimeValue: true,
	KindPurchaseLikelihood: true, KindChurnLikelihood: true, KindPredictedLTV: true, KindReturnLikelihood: true,
	KindNextBestProduct: true}

// IsPredictive reports whether a kind's value is a trained model's score.
func IsPredictive(kind string) bool {
	switch kind {
	case KindPurchaseLikelihood, KindChurnLikelihood, KindPredictedLTV, KindReturnLikelihood, KindNextBestProduct:
		return true
	}
	return false
}

// Definition statuses.
const (
	StatusComputing = "computing" // backfill over existing profiles still running
	StatusLive      = "live"
)

// Window bounds a definition to recent events; zero means all time.
type Window struct {
	Days  int `json:"days,omitempty"`
	Hours int `json:"hours,omitempty"`
}

// Duration of the window (0: all time).
func (w Window) Duration() time.Duration {
	return time.Duration(w.Days)*24*time.Hour + time.Duration(w.Hours)*time.Hour
}

func (w Window) validate(path string) error {
	if w.Days < 0 || w.Hours < 0 {
		return fieldErr(path, "days and hours must not be negative")
	}
	if w.Duration() > maxWindow {
		return fieldErr(path, "must be at most 3650 days")
	}
	return nil
}

// Event types an EventFilter can select.
const (
	TypeTrack  = "track"  // track events, by event name (the default)
	TypePage   = "page"   // page views, by page name
	TypeScreen = "screen" // screen views, by screen name
)

// EventFilter selects events: by type (track, page or screen; default track), name (the track
// event's name or the page's or screen's name; "*" for any event of the type) and conditions on
// their properties.
type EventFilter struct {
	Type  string      `json:"type,omitempty"`
	Name  string      `json:"name"`
	Where []Predicate `json:"where,omitempty"`
}

// EventType is the filter's event type ("track" when unset).
func (f *EventFilter) EventType() string {
	if f.Type == "" {
		return TypeTrack
	}
	return f.Type
}

func (f *EventFilter) compile(path string) error {
	switch f.Type {
	case "", TypeTrack, TypePage, TypeScreen:
	default:
		return fieldErr(path+".type", fmt.Sprintf("unknown event type %q (want track, page or screen)", f.Type))
	}
	if strings.TrimSpace(f.Name) == "" {
		return fieldErr(path+".name", `is required (use "*" for any event)`)
	}
	for i := range f.Where {
		if err := f.Where[i].compile(fmt.Sprintf("%s.where[%d]", path, i)); err != nil {
			return err
		}
	}
	return nil
}

// Matches reports whether a track event named name passes the filter; props returns its decoded
// properties (called only when the filter has conditions on them).
func (f *EventFilter) Matches(name string, props func() map[string]any) bool {
	return f.MatchesEvent(TypeTrack, name, props)
}

// MatchesEvent reports whether an event of type typ (track, page, screen) named name passes the
// filter; props returns its decoded properties (called only when the filter has conditions on
// them).
func (f *EventFilter) MatchesEvent(typ, name string, props func() map[string]any) bool {
	if f.EventType() != typ || f.Name != "*" && f.Name != name {
		return false
	}
	if len(f.Where) == 0 {
		return true
	}
	obj := props()
	for i := range f.Where {
		v, ok := Lookup(obj, f.Where[i].Key)
		if !f.Where[i].Match(v, ok) {
			return false
		}
	}
	return true
}

// ComputedTrait is a per-profile value computed from the profile's events.
type ComputedTrait struct {
	ID          string      `json:"id"`
	Key         string      `json:"key"` // the trait name on the profile and in conditions
	Name        string      `json:"name"`
	Description string      `json:"description,omitempty"`
	Kind        string      `json:"kind"`
	Event       EventFilter `json:"event"`
	Property    string      `json:"property,omitempty"`
	Window      Window      `json:"window,omitzero"`
	// Thresholds are the four ascending RFM cut points (recency: days; frequency: purchases;
	// monetary: revenue). Defaults: DefaultRecencyDays, DefaultFrequencyCounts, DefaultMonetaryThreshold.
	Thresholds []float64 `json:"thresholds,omitempty"`
	// Prediction configures the predictive kinds (defaults applied by Validate).
	Prediction *Prediction `json:"prediction,omitempty"`
	Version    int64       `json:"version"`
	CreatedAt  time.Time   `json:"createdAt"`
	UpdatedAt  time.Time   `json:"updatedAt"`
}

// Prediction is the configuration of a predictive computed trait. Its Event is the goal
// (default Order Completed; churn_likelihood: the activity, default any track event).
type Prediction struct {
	// HorizonDays is the prediction window N (7–365, default 30); the backtest holds out the
	// last N days and needs 3N days of history.
	HorizonDays int `json:"horizonDays,omitempty"`
	// RevenueProperty is the order value (predicted_ltv; default revenue).
	RevenueProperty string `json:"revenueProperty,omitempty"`
	// ReturnEvent selects returns (return_likelihood; default Order Refunded).
	ReturnEvent *EventFilter `json:"returnEvent,omitempty"`
	// ViewEvent selects product views (next_best_product; default Product Viewed) and
	// ProductProperty the product id in views and orders (default product_id; in an order also
	// each products[].product_id).
	ViewEvent       *EventFilter `json:"viewEvent,omitempty"`
	ProductProperty string       `json:"productProperty,omitempty"`
	// K is how many products next_best_product lists (1–20, default 5).
	K int `json:"k,omitempty"`
}

// Audience is a named condition over a profile; a profile matching it is a member.
type Audience struct {
	ID          string    `json:"id"`
	Key         string    `json:"key"` // snake_case, used as properties.audience_key downstream
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	Condition   Condition `json:"condition"`
	Version     int64     `json:"version"`
	CreatedAt   time.Time `json:"createdAt"`
	UpdatedAt   time.Time `json:"updatedAt"`
}

// Condition is one node of an audience's condition tree: exactly one field is set.
type Condition struct {
	And           []Condition     `json:"and,omitempty"`
	Or            []Condition     `json:"or,omitempty"`
	Not           *Condition      `json:"not,omitempty"`
	Trait         *Predicate      `json:"trait,omitempty"`         // a profile trait
	ComputedTrait *Predicate      `json:"computedTrait,omitempty"` // a computed trait, by key
	Event         *EventCondition `json:"event,omitempty"`
	Audience      *AudienceRef    `json:"audience,omitempty"` // membership of another audience
}

// AudienceRef names another audience by id, or by key (config files): the service resolves a
// key to the id when the definition is saved.
type AudienceRef struct {
	ID  string `json:"id,omitempty"`
	Key string `json:"key,omitempty"`
}

// EventCondition: "performed Name where … at least/at most/exactly N times within the last
// window (or between two dates)". Negate it with not for "has not performed".
type EventCondition struct {
	EventFilter
	Count   *Count  `json:"count,omitempty"`   // default: at least 1
	Within  Window  `json:"within,omitzero"`   // default: all time
	Between *Period `json:"between,omitempty"` // absolute period, instead of Within
}

// Count comparison operators.
const (
	AtLeast = "at_least"
	AtMost  = "at_most"
	Exactly = "exactly"
)

// Count compares the number of matching events.
type Count struct {
	Op string `json:"op"`
	N  int    `json:"n"`
}

// Period is [From, To).
type Period struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

var keyRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// KeyFromName makes a snake_case key from a display name.
func KeyFromName(name string) string {
	var b strings.Builder
	under := false
	for _, r := range strings.ToLower(strings.TrimSpace(name)) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			if b.Len() == 0 && r >= '0' && r <= '9' {
				b.WriteString("a_")
			}
			b.WriteRune(r)
			under = false
		case b.Len() > 0 && !under:
			b.WriteByte('_')
			under = true
		}
	}
	k := strings.TrimRight(b.String(), "_")
	if len(k) > 64 {
		k = strings.TrimRight(k[:64], "_")
	}
	return k
}

// Validate checks a computed trait and fills in defaults (key, RFM event and property).
func (c *ComputedTrait) Validate() error {
	if strings.TrimSpace(c.Name) == "" {
		return fieldErr("name", "is required")
	}
	if c.Key == "" {
		c.Key = KeyFromName(c.Name)
	}
	if !keyRE.MatchString(c.Key) {
		return fieldErr("key", "must be snake_case: a lower-case letter, then letters, digits or _ (at most 64)")
	}
	if !kinds[c.Kind] {
		return fieldErr("kind", fmt.Sprintf("unknown kind %q (want one of event_count, sum, avg, min, max, most_frequent, first, last, unique_list, unique_count, rfm_recency, rfm_frequency, rfm_monetary, lifetime_value, purchase_likelihood, churn_likelihood, predicted_ltv, return_likelihood, next_best_product)", c.Kind))
	}
	if IsPredictive(c.Kind) {
		return c.validatePrediction()
	}
	if c.Prediction != nil {
		return fieldErr("prediction", "only the predictive kinds (purchase_likelihood, churn_likelihood, predicted_ltv, return_likelihood, next_best_product) take a prediction")
	}
	if err := c.validateKind(); err != nil {
		return err
	}
	if c.Kind != KindRFMRecency && c.Kind != KindRFMFrequency && c.Kind != KindRFMMonetary && c.Thresholds != nil {
		return fieldErr("thresholds", "only RFM traits take thresholds")
	}
	if err := c.Event.compile("event"); err != nil {
		return err
	}
	return c.Window.validate("window")
}

// validateKind applies the defaults of the purchase-based kinds and checks what each kind needs.
func (c *ComputedTrait) validateKind() error {
	switch c.Kind {
	case KindRFMRecency, KindRFMFrequency, KindRFMMonetary, KindLifetimeValue:
		if c.Event.Name == "" {
			c.Event.Name = DefaultPurchaseEvent
		}
		if c.Property == "" && c.Kind != KindRFMRecency && c.Kind != KindRFMFrequency {
			c.Property = DefaultRevenueProperty
		}
		if c.Kind != KindLifetimeValue {
			if err := c.validateThresholds(); err != nil {
				return err
			}
		}
		if c.Kind == KindRFMRecency && c.Window.Duration() != 0 {
			return fieldErr("window", "rfm_recency looks at the last purchase ever; it takes no window")
		}
	case KindSum, KindAvg, KindMin, KindMax, KindMostFrequent, KindUniqueList, KindUniqueCount:
		if strings.TrimSpace(c.Property) == "" {
			return fieldErr("property", "is required for "+c.Kind)
		}
	}
	return nil
}

// validateThresholds defaults an RFM trait's cut points and checks them.
func (c *ComputedTrait) validateThresholds() error {
	if c.Thresholds == nil {
		c.Thresholds = c.defaultThresholds()
	}
	if len(c.Thresholds) != 4 {
		return fieldErr("thresholds", "must be four ascending numbers (the cut points of scores 1–5)")
	}
	for i := 1; i < 4; i++ {
		if c.Thresholds[i] <= c.Thresholds[i-1] {
			return fieldErr("thresholds", "must be strictly ascending")
		}
	}
	return nil
}

func (c *ComputedTrait) defaultThresholds() []float64 {
	switch c.Kind {
	case KindRFMRecency:
		return append([]float64(nil), DefaultRecencyDays...)
	case KindRFMFrequency:
		return append([]float64(nil), DefaultFrequencyCounts...)
	}
	return append([]float64(nil), DefaultMonetaryThreshold...)
}

// Validate checks an audience's fields and condition tree (not references to other
// definitions; see Catalog.validate).
func (a *Audience) Validate() error {
	if strings.TrimSpace(a.Name) == "" {
		return fieldErr("name", "is required")
	}
	if a.Key == "" {
		a.Key = KeyFromName(a.Name)
	}
	if !keyRE.MatchString(a.Key) {
		return fieldErr("key", "must be snake_case: a lower-case letter, then letters, digits or _ (at most 64)")
	}
	return a.Condition.compile("condition", 0)
}

const maxDepth = 16

func (c *Condition) compile(path string, depth int) error {
	if depth > maxDepth {
		return fieldErr(path, "is nested too deeply (at most 16 levels)")
	}
	set := 0
	for _, b := range []bool{c.And != nil, c.Or != nil, c.Not != nil, c.Trait != nil, c.ComputedTrait != nil, c.Event != nil, c.Audience != nil} {
		if b {
			set++
		}
	}
	if set != 1 {
		return fieldErr(path, "must have exactly one of and, or, not, trait, computedTrait, event, audience")
	}
	switch {
	case c.And != nil:
		return compileList(c.And, path+".and", depth)
	case c.Or != nil:
		return compileList(c.Or, path+".or", depth)
	case c.Not != nil:
		return c.Not.compile(path+".not", depth+1)
	case c.Trait != nil:
		return c.Trait.compile(path + ".trait")
	case c.ComputedTrait != nil:
		return c.ComputedTrait.compile(path + ".computedTrait")
	case c.Audience != nil:
		return c.Audience.validate(path + ".audience")
	}
	return c.Event.compile(path + ".event")
}

// compileList compiles the operands of an and/or node.
func compileList(list []Condition, path string, depth int) error {
	if len(list) == 0 {
		return fieldErr(path, "must list at least one condition")
	}
	for i := range list {
		if err := list[i].compile(fmt.Sprintf("%s[%d]", path, i), depth+1); err != nil {
			return err
		}
	}
	return nil
}

func (a *AudienceRef) validate(path string) error {
	if a.ID != "" {
		return nil
	}
	if a.Key != "" {
		return fieldErr(path+".key", fmt.Sprintf("no audience has key %q", a.Key))
	}
	return fieldErr(path+".id", "is required")
}

func (e *EventCondition) compile(path string) error {
	if err := e.EventFilter.compile(path); err != nil {
		return err
	}
	if e.Count != nil {
		if e.Count.Op != AtLeast && e.Count.Op != AtMost && e.Count.Op != Exactly {
			return fieldErr(path+".count.op", fmt.Sprintf("unknown %q (want at_least, at_most, exactly)", e.Count.Op))
		}
		if e.Count.N < 0 {
			return fieldErr(path+".count.n", "must not be negative")
		}
	}
	if err := e.Within.validate(path + ".within"); err != nil {
		return err
	}
	if e.Between == nil {
		return nil
	}
	if e.Within.Duration() != 0 {
		return fieldErr(path, "takes within or between, not both")
	}
	if e.Between.From.IsZero() || e.Between.To.IsZero() || !e.Between.From.Before(e.Between.To) {
		return fieldErr(path+".between", "needs from before to (RFC 3339 dates)")
	}
	return nil
}

// Walk calls fn on every node of the tree.
func (c *Condition) Walk(fn func(*Condition)) {
	fn(c)
	for i := range c.And {
		c.And[i].Walk(fn)
	}
	for i := range c.Or {
		c.Or[i].Walk(fn)
	}
	if c.Not != nil {
		c.Not.Walk(fn)
	}
}
