package predict

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"time"

	"gonum.org/v1/gonum/stat/distuv"
)

// SimConfig configures Simulate. Zero fields take the defaults: the BG/NBD fit to CDNOW
// (Fader, Hardie & Lee 2005: r = 0.243, α = 4.414 weeks, a = 0.793, b = 2.426) in days, their
// Gamma-Gamma fit (p = 6.25, q = 3.74, γ = 15.44), returns Beta(1, 8), 78 weeks of history with
// customers acquired over the first 12.
type SimConfig struct {
	Seed      uint64
	Customers int
	// Start is the history's first instant (default 2025-01-01 UTC); Now() its end.
	Start           time.Time
	HistoryDays     int // default 546
	AcquisitionDays int // first purchases spread uniformly over [0, AcquisitionDays) (default 84)
	// BG/NBD in days: λ ~ Gamma(R, Alpha) (rate per day), dropout p ~ Beta(A, B).
	R, Alpha, A, B float64
	// Gamma-Gamma: order value ~ Gamma(P, ν), ν ~ Gamma(Q, Gamma).
	P, Q, Gamma float64
	// Each order is refunded with the customer's θ ~ Beta(ReturnA, ReturnB), 1–14 days later.
	ReturnA, ReturnB float64
	// ViewsPerOrder: while alive a customer views products at ViewsPerOrder × λ per day
	// (default 3), so its activity (orders and views) is BG/NBD with rate (1+ViewsPerOrder)λ
	// and dropout p/(1+ViewsPerOrder) per active event.
	ViewsPerOrder float64
	// The catalogue: Categories × ProductsPerCategory products (defaults 20 × 25), Zipf-popular
	// within a category; a customer prefers CategoriesPerCustomer categories (default 2) and
	// picks from them with probability Affinity (default 0.85), else from any category.
	Categories, ProductsPerCategory, CategoriesPerCustomer int
	Affinity                                               float64
}

// WithDefaults is c with its zero fields set to the defaults.
func (c SimConfig) WithDefaults() SimConfig {
	def := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	defInt := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	if c.Start.IsZero() {
		c.Start = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	defInt(&c.HistoryDays, 546)
	defInt(&c.AcquisitionDays, 84)
	def(&c.R, 0.243)
	def(&c.Alpha, 4.414*7)
	def(&c.A, 0.793)
	def(&c.B, 2.426)
	def(&c.P, 6.25)
	def(&c.Q, 3.74)
	def(&c.Gamma, 15.44)
	def(&c.ReturnA, 1)
	def(&c.ReturnB, 8)
	def(&c.ViewsPerOrder, 3)
	defInt(&c.Categories, 20)
	defInt(&c.ProductsPerCategory, 25)
	defInt(&c.CategoriesPerCustomer, 2)
	def(&c.Affinity, 0.85)
	return c
}

// Now is the end of the simulated history.
func (c SimConfig) Now() time.Time {
	c = c.WithDefaults()
	return c.Start.Add(time.Duration(c.HistoryDays) * 24 * time.Hour)
}

// Event is a simulated track event, its properties as Segment's e-commerce spec has them.
type Event struct {
	Name       string
	Time       time.Time
	Properties map[string]any
}

// Simulated event names.
const (
	EventOrderCompleted = "Order Completed"
	EventOrderRefunded  = "Order Refunded"
	EventProductViewed  = "Product Viewed"
)

// Customer is a simulated customer: its true parameters and its events in time order.
type Customer struct {
	ID         string
	Lambda     float64 // transactions per day while alive
	Dropout    float64 // p: P(dropping out after a repeat transaction)
	Nu         float64 // ν: order values are Gamma(P, ν)
	ReturnP    float64 // θ: P(an order is refunded)
	Categories []int
	Acquired   time.Time
	DroppedAt  time.Time // zero when still alive at the end
	Events     []Event
}

// Simulate generates cfg.Customers customers from the known processes; the same config gives
// the same customers (each is drawn from its own PCG stream of the seed).
func Simulate(cfg SimConfig) []Customer {
	cfg = cfg.WithDefaults()
	cat := newCatalogue(cfg)
	out := make([]Customer, cfg.Customers)
	for i := range out {
		out[i] = simulateOne(cfg, cat, i)
	}
	return out
}

// catalogue is the simulated products: ids per category and their cumulative Zipf weights.
type catalogue struct {
	ids [][]string
	cum []float64
}

func newCatalogue(cfg SimConfig) catalogue {
	c := catalogue{ids: make([][]string, cfg.Categories), cum: make([]float64, cfg.ProductsPerCategory)}
	total := 0.0
	for j := range c.cum {
		total += 1 / float64(j+1)
		c.cum[j] = total
	}
	for j := range c.cum {
		c.cum[j] /= total
	}
	for k := range c.ids {
		c.ids[k] = make([]string, cfg.ProductsPerCategory)
		for j := range c.ids[k] {
			c.ids[k][j] = fmt.Sprintf("c%02dp%03d", k, j)
		}
	}
	return c
}

// pick draws a product: from one of the preferred categories with probability affinity.
func (c catalogue) pick(rng *rand.Rand, prefs []int, affinity float64) string {
	k := rng.IntN(len(c.ids))
	if rng.Float64() < affinity {
		k = prefs[rng.IntN(len(prefs))]
	}
	j := sort.SearchFloat64s(c.cum, rng.Float64())
	return c.ids[k][min(j, len(c.ids[k])-1)]
}

// simulateOne draws customer i.
func simulateOne(cfg SimConfig, cat catalogue, i int) Customer {
	src := rand.NewPCG(cfg.Seed, uint64(i)+1)
	rng := rand.New(src)
	c := Customer{
		ID:      fmt.Sprintf("sim-%06d", i),
		Lambda:  distuv.Gamma{Alpha: cfg.R, Beta: cfg.Alpha, Src: src}.Rand(),
		Dropout: distuv.Beta{Alpha: cfg.A, Beta: cfg.B, Src: src}.Rand(),
		Nu:      distuv.Gamma{Alpha: cfg.Q, Beta: cfg.Gamma, Src: src}.Rand(),
		ReturnP: distuv.Beta{Alpha: cfg.ReturnA, Beta: cfg.ReturnB, Src: src}.Rand(),
	}
	c.Lambda = math.Max(c.Lambda, 1e-12)
	perm := rng.Perm(cfg.Categories)
	c.Categories = append([]int(nil), perm[:min(cfg.CategoriesPerCustomer, cfg.Categories)]...)
	end := float64(cfg.HistoryDays)
	t0 := rng.Float64() * float64(cfg.AcquisitionDays)
	at := func(t float64) time.Time { return cfg.Start.Add(time.Duration(t * 24 * float64(time.Hour))) }
	c.Acquired = at(t0)
	// Transactions: the first at t0, then Poisson(λ) while alive; dropout with p after each repeat.
	orders := []float64{t0}
	death := end
	for t := t0; ; {
		t += rng.ExpFloat64() / c.Lambda
		if t >= end {
			break
		}
		orders = append(orders, t)
		if rng.Float64() < c.Dropout {
			death = t
			c.DroppedAt = at(t)
			break
		}
	}
	spend := distuv.Gamma{Alpha: cfg.P, Beta: c.Nu, Src: src}
	for k, t := range orders {
		c.Events = append(c.Events, c.order(cfg, cat, rng, spend, k, t, at)...)
	}
	// Views while alive at ViewsPerOrder × λ.
	for t := t0; ; {
		t += rng.ExpFloat64() / (cfg.ViewsPerOrder * c.Lambda)
		if t >= death {
			break
		}
		c.Events = append(c.Events, Event{Name: EventProductViewed, Time: at(t),
			Properties: map[string]any{"product_id": cat.pick(rng, c.Categories, cfg.Affinity)}})
	}
	sort.SliceStable(c.Events, func(a, b int) bool { return c.Events[a].Time.Before(c.Events[b].Time) })
	return c
}

// order is the k-th order's Order Completed event (1–3 products, a Gamma-Gamma value) and, with
// probability θ, its Order Refunded 1–14 days later (if within the history).
func (c *Customer) order(cfg SimConfig, cat catalogue, rng *rand.Rand, spend distuv.Gamma, k int, t float64,
	at func(float64) time.Time) []Event {
	id := fmt.Sprintf("%s-o%d", c.ID, k)
	n := 1 + rng.IntN(3)
	products := make([]any, 0, n)
	for range n {
		products = append(products, map[string]any{"product_id": cat.pick(rng, c.Categories, cfg.Affinity)})
	}
	revenue := math.Max(math.Round(spend.Rand()*100)/100, 0.01)
	evs := []Event{{Name: EventOrderCompleted, Time: at(t),
		Properties: map[string]any{"order_id": id, "revenue": revenue, "products": products}}}
	if rng.Float64() < c.ReturnP {
		if rt := t + 1 + 13*rng.Float64(); rt < float64(cfg.HistoryDays) {
			evs = append(evs, Event{Name: EventOrderRefunded, Time: at(rt), Properties: map[string]any{"order_id": id}})
		}
	}
	return evs
}

// Profile is the customer's features at now as the segments stage keeps them, with Goal the
// Order Completed days (purchase_likelihood, predicted_ltv, return_likelihood,
// next_best_product); "within the horizon" is on a day after CutoffDay(now, horizonDays).
func (c *Customer) Profile(now time.Time, horizonDays int) Profile {
	return c.profile(now, horizonDays, func(e Event) bool { return e.Name == EventOrderCompleted })
}

// ChurnProfile is Profile with Goal the activity days (churn_likelihood): the days with an
// order or a product view. Refunds are left out: they follow an order whether or not the
// customer is still alive.
func (c *Customer) ChurnProfile(now time.Time, horizonDays int) Profile {
	return c.profile(now, horizonDays, func(e Event) bool { return e.Name != EventOrderRefunded })
}

func (c *Customer) profile(now time.Time, horizonDays int, goal func(Event) bool) Profile {
	cutoff := CutoffDay(now, horizonDays)
	var p Profile
	var days []int64
	viewed, bought, recentBought := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, e := range c.Events {
		if e.Time.After(now) {
			break
		}
		d := Day(e.Time)
		recent := d > cutoff
		if goal(e) && (len(days) == 0 || days[len(days)-1] != d) {
			days = append(days, d)
		}
		switch e.Name {
		case EventProductViewed:
			viewed[e.Properties["product_id"].(string)] = true
		case EventOrderRefunded:
			p.Returns++
			if recent {
				p.RecentReturns++
			}
		case EventOrderCompleted:
			addOrder(&p, e, recent, bought, recentBought)
		}
	}
	if len(days) > 0 {
		p.Goal = Activity{Count: int64(len(days)), First: days[0], Recent: slices.Clone(days[max(0, len(days)-MaxRecentDays):])}
	}
	p.Viewed, p.Bought, p.RecentBought = smallest(viewed), smallest(bought), smallest(recentBought)
	return p
}

// addOrder adds an Order Completed event to a profile's order counts, spend and products.
func addOrder(p *Profile, e Event, recent bool, bought, recentBought map[string]bool) {
	rev := e.Properties["revenue"].(float64)
	p.Orders++
	p.Spend.Count++
	p.Spend.Sum += rev
	if recent {
		p.RecentOrders++
		p.RecentSpend.Count++
		p.RecentSpend.Sum += rev
	}
	for _, it := range e.Properties["products"].([]any) {
		id := it.(map[string]any)["product_id"].(string)
		bought[id] = true
		if recent {
			recentBought[id] = true
		}
	}
}

// smallest is the at most 100 smallest keys of set, sorted (the unique_list accumulator's cap).
func smallest(set map[string]bool) []string {
	if len(set) == 0 {
		return nil
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	slices.Sort(out)
	return out[:min(len(out), 100)]
}
