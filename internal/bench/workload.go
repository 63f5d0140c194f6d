package bench

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"time"
)

// Kinds of generated messages.
const (
	KindPage     = "page"
	KindIdentify = "identify"
	KindTrack    = "track"
)

// Audience keys and their thresholds, shared by the definitions the runner creates and by the
// ground truth the generator computes.
const (
	PurchaseEvent        = "Order Completed"
	AudienceBuyers       = "buyers"        // at least 1 purchase in 30 days
	AudienceRepeatBuyers = "repeat_buyers" // at least 3 purchases in 30 days
	AudienceBigSpenders  = "big_spenders"  // computed trait total_revenue ≥ BigSpenderRevenue
	BigSpenderRevenue    = 300
	RepeatBuyerOrders    = 3
)

// Person is one human in the generated world: a user id and email once they sign in, and one
// anonymous id per device. Visitors never sign in and use one device.
type Person struct {
	Index   int      `json:"index"`
	UserID  string   `json:"user_id,omitempty"`
	Email   string   `json:"email,omitempty"`
	Devices []string `json:"devices"`
}

// Identifiers are the Profile API references that must all resolve to this person's profile.
func (p Person) Identifiers() []string {
	var ids []string
	if p.UserID != "" {
		ids = append(ids, "user_id:"+p.UserID)
	}
	if p.Email != "" {
		ids = append(ids, "email:"+p.Email)
	}
	for _, d := range p.Devices {
		ids = append(ids, "anonymous_id:"+d)
	}
	return ids
}

// Msg is one message as the client library sends it.
type Msg struct {
	Person      int            `json:"person"`
	Kind        string         `json:"kind"`
	MessageID   string         `json:"message_id"`
	UserID      string         `json:"user_id,omitempty"`
	AnonymousID string         `json:"anonymous_id,omitempty"`
	Event       string         `json:"event,omitempty"` // track event or page name
	Traits      map[string]any `json:"traits,omitempty"`
	Revenue     int            `json:"revenue,omitempty"`
	Product     string         `json:"product,omitempty"`
	// Offset is the event time relative to the run's base time (the client's timestamp).
	Offset time.Duration `json:"offset"`
	// Duplicate marks a redelivery of an earlier message (same messageId).
	Duplicate bool `json:"duplicate,omitempty"`
}

// Workload is a deterministic function of (Seed, Persons): the same inputs give the same
// persons and the same messages in the same send order.
type Workload struct {
	Seed    uint64
	Persons []Person
	Sends   []Msg // in send order, duplicates included
	// Expected are the audience entries per person index, from the generator's ground truth.
	Expected map[int][]string
	// Span is how far back the earliest event lies.
	Span time.Duration
}

var products = []string{"shoes", "jacket", "socks", "hat", "bag", "watch", "scarf", "gloves"}
var pages = []string{"Home", "Pricing", "Product", "Cart", "Blog", "Docs", "About"}

// Generate builds the workload: persons with 1–3 devices (25% are visitors who never sign in),
// anonymous sessions that later identify, power-law activity (Pareto, α = 1.3), purchases with
// whole-dollar revenue after sign-in, ~2% duplicate deliveries and ~10% local reordering.
func Generate(seed uint64, persons int) *Workload {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	const span = 72 * time.Hour
	w := &Workload{Seed: seed, Expected: map[int][]string{}, Span: span}
	type timed struct {
		Msg
		at time.Duration
	}
	var all []timed
	seq := 0
	var extra []Person
	newID := func() string {
		seq++
		return fmt.Sprintf("bench-%d-%07d", seed, seq)
	}
	for i := 0; i < persons; i++ {
		p := Person{Index: i}
		visitor := r.Float64() < 0.25
		nDev := 1
		if !visitor {
			nDev = 1 + r.IntN(3)
			p.UserID = fmt.Sprintf("user-%d-%05d", seed, i)
			p.Email = fmt.Sprintf("person%05d.s%d@example.com", i, seed)
		}
		for d := 0; d < nDev; d++ {
			p.Devices = append(p.Devices, fmt.Sprintf("anon-%d-%05d-%d", seed, i, d))
		}
		w.Persons = append(w.Persons, p)

		// Activity: Pareto-distributed number of events, at least 4, at most 400.
		n := int(math.Min(400, 6/math.Pow(1-r.Float64(), 1/1.3)))
		n = max(n, 4)
		start := time.Duration(r.Int64N(int64(span / 2)))
		step := (span - start) / time.Duration(n+nDev+1)
		at := start
		next := func() time.Duration {
			at += time.Duration(r.Int64N(int64(step))) + time.Second
			return at
		}
		// Each device browses anonymously first; signing in on it links the device.
		signedIn := map[int]bool{}
		perDevice := max(1, n/(3*nDev))
		for d := 0; d < nDev; d++ {
			for k := 0; k < 1+r.IntN(perDevice); k++ {
				all = append(all, timed{Msg{Person: i, Kind: KindPage, MessageID: newID(), AnonymousID: p.Devices[d], Event: pages[r.IntN(len(pages))]}, next()})
			}
			if !visitor && (d == 0 || r.Float64() < 0.8) {
				all = append(all, timed{Msg{Person: i, Kind: KindIdentify, MessageID: newID(), UserID: p.UserID, AnonymousID: p.Devices[d],
					Traits: map[string]any{"email": p.Email, "name": fmt.Sprintf("Person %d", i), "plan": []string{"free", "pro", "team"}[r.IntN(3)]}}, next()})
				signedIn[d] = true
			}
		}
		if !visitor {
			// A device that never signed in cannot be linked to the person by anything the
			// system sees: the ground truth counts it as an anonymous profile of its own.
			var kept []string
			for d := 0; d < nDev; d++ {
				if signedIn[d] {
					kept = append(kept, p.Devices[d])
				} else {
					extra = append(extra, Person{Devices: []string{p.Devices[d]}})
				}
			}
			w.Persons[i].Devices = kept
		}
		for done := 0; done < n; done++ {
			if visitor {
				m := Msg{Person: i, Kind: KindPage, MessageID: newID(), AnonymousID: p.Devices[0], Event: pages[r.IntN(len(pages))]}
				if r.Float64() < 0.3 {
					m.Kind, m.Event, m.Product = KindTrack, "Product Viewed", products[r.IntN(len(products))]
				}
				all = append(all, timed{m, next()})
				continue
			}
			d := p.Devices[0]
			if len(w.Persons[i].Devices) > 0 {
				d = w.Persons[i].Devices[r.IntN(len(w.Persons[i].Devices))]
			}
			m := Msg{Person: i, UserID: p.UserID, AnonymousID: d, MessageID: newID()}
			switch x := r.Float64(); {
			case x < 0.45:
				m.Kind, m.Event = KindPage, pages[r.IntN(len(pages))]
			case x < 0.75:
				m.Kind, m.Event, m.Product = KindTrack, "Product Viewed", products[r.IntN(len(products))]
			case x < 0.90:
				m.Kind, m.Event, m.Product = KindTrack, "Product Added", products[r.IntN(len(products))]
			default:
				m.Kind, m.Event, m.Product = KindTrack, PurchaseEvent, products[r.IntN(len(products))]
				m.Revenue = 10 + r.IntN(191)
			}
			all = append(all, timed{m, next()})
		}
	}
	// Devices that never signed in come after the generated persons.
	for _, p := range extra {
		p.Index = len(w.Persons)
		w.Persons = append(w.Persons, p)
	}
	// Send order: by event time across persons, then local reordering (out-of-order delivery)
	// and duplicates (a redelivered copy some messages later).
	sort.SliceStable(all, func(i, j int) bool { return all[i].at < all[j].at })
	for i := 0; i+1 < len(all); i++ {
		if r.Float64() < 0.10 {
			j := min(len(all)-1, i+1+r.IntN(20))
			all[i], all[j] = all[j], all[i]
		}
	}
	for _, t := range all {
		t.Msg.Offset = t.at - span
		w.Sends = append(w.Sends, t.Msg)
	}
	var out []Msg
	var pending []Msg
	for i, m := range w.Sends {
		out = append(out, m)
		if r.Float64() < 0.02 {
			d := m
			d.Duplicate = true
			pending = append(pending, d)
		}
		if len(pending) > 0 && (i%37 == 0 || i == len(w.Sends)-1) {
			out = append(out, pending...)
			pending = nil
		}
	}
	w.Sends = out
	w.Expected = expectedEntries(w.Sends)
	return w
}

// Trigger is when an audience entry became due: the send index of the first message after
// which the sent messages satisfy the audience's condition.
type Trigger struct {
	Person   int
	Audience string
	Send     int
}

// Triggers computes, in send order, the message that makes each person enter each audience.
// Purchases only happen after sign-in and under the user id, so conditions are evaluated per
// person; duplicates never count.
func (w *Workload) Triggers() []Trigger {
	orders, revenue := map[int]int{}, map[int]int{}
	seen := map[string]bool{}
	var out []Trigger
	for i, m := range w.Sends {
		if m.Duplicate || seen[m.MessageID] || m.Event != PurchaseEvent || m.Kind != KindTrack {
			seen[m.MessageID] = true
			continue
		}
		seen[m.MessageID] = true
		before, beforeRev := orders[m.Person], revenue[m.Person]
		orders[m.Person]++
		revenue[m.Person] += m.Revenue
		if before == 0 {
			out = append(out, Trigger{m.Person, AudienceBuyers, i})
		}
		if before < RepeatBuyerOrders && orders[m.Person] >= RepeatBuyerOrders {
			out = append(out, Trigger{m.Person, AudienceRepeatBuyers, i})
		}
		if beforeRev < BigSpenderRevenue && revenue[m.Person] >= BigSpenderRevenue {
			out = append(out, Trigger{m.Person, AudienceBigSpenders, i})
		}
	}
	return out
}

func expectedEntries(sends []Msg) map[int][]string {
	w := &Workload{Sends: sends}
	out := map[int][]string{}
	for _, t := range w.Triggers() {
		out[t.Person] = append(out[t.Person], t.Audience)
	}
	return out
}

// Distinct is the number of distinct messages (duplicates excluded).
func (w *Workload) Distinct() int {
	n := 0
	for _, m := range w.Sends {
		if !m.Duplicate {
			n++
		}
	}
	return n
}

// Fingerprint is a SHA-256 over persons and messages: equal seeds give equal fingerprints.
func (w *Workload) Fingerprint() string {
	h := sha256.New()
	enc := json.NewEncoder(h)
	_ = enc.Encode(w.Persons)
	_ = enc.Encode(w.Sends)
	return hex.EncodeToString(h.Sum(nil))[:16]
}
