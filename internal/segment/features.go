package segment

import (
	"slices"
	"time"

	"github.com/serverless-cdp/cdp/internal/predict"
	"github.com/serverless-cdp/cdp/internal/segmentdef"
)

// Accumulator classes of the predictive traits' features (see aggregate.go).
const (
	classDays     = "a" // distinct active UTC days: how many, the first, the last predict.MaxRecentDays
	classProducts = "p" // the MaxUniqueValues smallest distinct product ids: the property and products[].<property>
)

// features are the accumulators a predictive computed trait reads (nil: not used by its kind).
type features struct {
	goal                         *aggSpec // active days of the goal event (churn: of any activity)
	spend, recentSpend           *aggSpec // order values, all time and within the horizon (predicted_ltv)
	orders, returns              *aggSpec // orders and returns, all time (return_likelihood)
	recentOrders, recentReturns  *aggSpec // within the horizon
	viewed, bought, recentBought *aggSpec // product ids viewed and bought (next_best_product)
}

// IsPredictive reports whether a computed trait kind is a trained model's score.
func IsPredictive(kind string) bool { return segmentdef.IsPredictive(kind) }

// addFeatures registers the accumulators of a predictive trait (t validated) and indexes the
// trait by every event they read, so such an event re-scores the profile.
func (c *Catalog) addFeatures(t *ComputedTrait) *features {
	p := t.Prediction
	// "Within the horizon" is predict's: the days after predict.CutoffDay(now, horizon), i.e.
	// today and the horizon-1 days before it (a window of horizon-1 whole days plus today's
	// bucket).
	horizon := Window{Days: p.HorizonDays - 1}
	spec := func(f *EventFilter, prop, class string, w Window) *aggSpec {
		s := &aggSpec{filter: f, prop: prop, class: class, window: w.Duration(), bucket: bucketOf(w)}
		s.sig = s.signature()
		s = c.addSpec(s)
		k := evKey(f.EventType(), f.Name)
		if !slices.Contains(c.traitsByEvent[k], t) {
			c.traitsByEvent[k] = append(c.traitsByEvent[k], t)
		}
		return s
	}
	f := &features{goal: c.traitSpecs[t.Key]}
	switch t.Kind {
	case segmentdef.KindPredictedLTV:
		f.spend = spec(&t.Event, p.RevenueProperty, classSum, Window{})
		f.recentSpend = spec(&t.Event, p.RevenueProperty, classSum, horizon)
	case segmentdef.KindReturnLikelihood:
		f.orders = spec(&t.Event, "", classCount, Window{})
		f.returns = spec(p.ReturnEvent, "", classCount, Window{})
		f.recentOrders = spec(&t.Event, "", classCount, horizon)
		f.recentReturns = spec(p.ReturnEvent, "", classCount, horizon)
	case segmentdef.KindNextBestProduct:
		f.viewed = spec(p.ViewEvent, p.ProductProperty, classProducts, Window{})
		f.bought = spec(&t.Event, p.ProductProperty, classProducts, Window{})
		f.recentBought = spec(&t.Event, p.ProductProperty, classProducts, horizon)
	}
	return f
}

// remap points the features at the accumulators shareCounts replaced.
func (f *features) remap(to map[*aggSpec]*aggSpec) {
	for _, s := range []**aggSpec{&f.goal, &f.spend, &f.recentSpend, &f.orders, &f.returns, &f.recentOrders,
		&f.recentReturns, &f.viewed, &f.bought, &f.recentBought} {
		if r := to[*s]; *s != nil && r != nil {
			*s = r
		}
	}
}

// PredictionProfile is what a predictive trait's model reads of a profile at now: its features'
// accumulators as a predict.Profile (with no identifier).
func (c *Catalog) PredictionProfile(st *State, t *ComputedTrait, now time.Time) predict.Profile {
	var p predict.Profile
	f := c.features[t.Key]
	if f == nil {
		return p
	}
	at := func(s *aggSpec) *Tally {
		if s == nil {
			return &Tally{}
		}
		return st.Aggs[s.sig].at(s, now)
	}
	if d := at(f.goal).D; d != nil {
		p.Goal = predict.Activity{Count: d.Count, First: d.First, Recent: slices.Clone(d.Recent)}
	}
	if f.spend != nil {
		s, r := at(f.spend), at(f.recentSpend)
		p.Spend = predict.Spend{Count: s.K, Sum: round(s.total())}
		p.RecentSpend = predict.Spend{Count: r.K, Sum: round(r.total())}
	}
	if f.orders != nil {
		p.Orders, p.Returns = at(f.orders).N, at(f.returns).N
		p.RecentOrders, p.RecentReturns = at(f.recentOrders).N, at(f.recentReturns).N
	}
	if f.viewed != nil {
		p.Viewed = slices.Clone(at(f.viewed).List)
		p.Bought = slices.Clone(at(f.bought).List)
		p.RecentBought = slices.Clone(at(f.recentBought).List)
	}
	return p
}

// addDay counts an active day. Days are distinct: a day already kept counts once. A day older
// than the kept ones (a late event) counts only when it is a new first day: whether an older
// day between the first and the kept ones is new cannot be told, and it is not counted.
func addDay(a *predict.Activity, d int64) {
	if a.Count == 0 {
		a.Count, a.First, a.Recent = 1, d, []int64{d}
		return
	}
	i, found := slices.BinarySearch(a.Recent, d)
	if found {
		return
	}
	if i == 0 && len(a.Recent) >= predict.MaxRecentDays {
		if d < a.First {
			a.First = d
			a.Count++
		}
		return
	}
	a.Recent = slices.Insert(a.Recent, i, d)
	a.Count++
	a.First = min(a.First, d)
	if over := len(a.Recent) - predict.MaxRecentDays; over > 0 {
		a.Recent = slices.Delete(a.Recent, 0, over)
	}
}

// mergeDays adds another profile's active days (a merge of profiles): the kept days are
// united; days both count but neither keeps are counted twice (an overestimate only for two
// profiles of one person active on the same days long ago).
func mergeDays(a, o *predict.Activity) {
	if o == nil || o.Count == 0 {
		return
	}
	if a.Count == 0 {
		a.Count, a.First, a.Recent = o.Count, o.First, slices.Clone(o.Recent)
		return
	}
	both := 0
	union := slices.Clone(a.Recent)
	for _, d := range o.Recent {
		if i, found := slices.BinarySearch(union, d); found {
			both++
		} else {
			union = slices.Insert(union, i, d)
		}
	}
	a.Count += o.Count - int64(both)
	a.First = min(a.First, o.First)
	if over := len(union) - predict.MaxRecentDays; over > 0 {
		union = union[over:]
	}
	a.Recent = union
}

// addProducts adds the product ids of an event: its property, and each products[].<property>
// (Segment's ecommerce spec).
func (t *Tally) addProducts(s *aggSpec, e *Event) {
	props := e.props()
	if v, ok := lookup(props, s.prop); ok {
		if str := scalarString(v); str != "" {
			t.List = insertSorted(t.List, str, MaxUniqueValues)
		}
	}
	items, _ := props["products"].([]any)
	for _, it := range items {
		obj, _ := it.(map[string]any)
		if v, ok := lookup(obj, s.prop); ok {
			if str := scalarString(v); str != "" {
				t.List = insertSorted(t.List, str, MaxUniqueValues)
			}
		}
	}
}
