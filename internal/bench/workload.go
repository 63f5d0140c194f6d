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
	g := &generator{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), seed: seed}
	const span = 72 * time.Hour
	w := &Workload{Seed: seed, Expected: map[int][]string{}, Span: span}
	var extra []Person
	for i := 0; i < persons; i++ {
		p, visitor := g.person(i)
		w.Persons = append(w.Persons, p)

		// Activity: Pareto-distributed number of events, at least 4, at most 400.
		n := int(math.Min(400, 6/math.Pow(1-g.r.Float64(), 1/1.3)))
		n = max(n, 4)
		start := time.Duration(g.r.Int64N(int64(span / 2)))
		g.step = (span - start) / time.Duration(n+len(p.Devices)+1)
		g.at = start
		signedIn := g.browseAndSignIn(i, p, visitor, n)
		if !visitor {
			// A device that never signed in cannot be linked to the person by anything the
			// system sees: the ground truth counts it as an anonymous profile of its own.
			var kept []string
			for d := range p.Devices {
				if signedIn[d] {
					kept = append(kept, p.Devices[d])
				} else {
					extra = append(extra, Person{Devices: []string{p.Devices[d]}})
				}
			}
			w.Persons[i].Devices = kept
		}
		g.activity(i, p, visitor, w.Persons[i].Devices, n)
	}
	// Devices that never signed in come after the generated persons.
	for _, p := range extra {
		p.Index = len(w.Persons)
		w.Persons = append(w.Persons, p)
	}
	w.Sends = g.withDuplicates(g.sendOrder(span))
	w.Expected = expectedEntries(w.Sends)
	return w
}

// generator is Generate's state: one random source drawn in a fixed order (so a seed always
// gives the same workload), the message sequence and the messages with their event times.
type generator struct {
	r    *rand.Rand
	seed uint64
	seq  int
	all  []timed
	// at is the current person's latest event time; step bounds the gap to the next one.
	at, step time.Duration
}

type timed struct {
	Msg
	at time.Duration
}

func (g *generator) newID() string {
	g.seq++
	return fmt.Sprintf("bench-%d-%07d", g.seed, g.seq)
}

// add appends m at the current person's next event time.
func (g *generator) add(m Msg) {
	g.at += time.Duration(g.r.Int64N(int64(g.step))) + time.Second
	g.all = append(g.all, timed{m, g.at})
}

// person makes person i: a visitor (25%) with one device, or a user with 1–3 devices.
func (g *generator) person(i int) (Person, bool) {
	p := Person{Index: i}
	visitor := g.r.Float64() < 0.25
	nDev := 1
	if !visitor {
		nDev = 1 + g.r.IntN(3)
		p.UserID = fmt.Sprintf("user-%d-%05d", g.seed, i)
		p.Email = fmt.Sprintf("person%05d.s%d@example.com", i, g.seed)
	}
	for d := 0; d < nDev; d++ {
		p.Devices = append(p.Devices, fmt.Sprintf("anon-%d-%05d-%d", g.seed, i, d))
	}
	return p, visitor
}

// browseAndSignIn has each device browse anonymously first; signing in on it links the device.
// It returns the devices signed in on.
func (g *generator) browseAndSignIn(i int, p Person, visitor bool, n int) map[int]bool {
	signedIn := map[int]bool{}
	nDev := len(p.Devices)
	perDevice := max(1, n/(3*nDev))
	for d := 0; d < nDev; d++ {
		for k := 0; k < 1+g.r.IntN(perDevice); k++ {
			g.add(Msg{Person: i, Kind: KindPage, MessageID: g.newID(), AnonymousID: p.Devices[d], Event: pages[g.r.IntN(len(pages))]})
		}
		if !visitor && (d == 0 || g.r.Float64() < 0.8) {
			g.add(Msg{Person: i, Kind: KindIdentify, MessageID: g.newID(), UserID: p.UserID, AnonymousID: p.Devices[d],
				Traits: map[string]any{"email": p.Email, "name": fmt.Sprintf("Person %d", i), "plan": []string{"free", "pro", "team"}[g.r.IntN(3)]}})
			signedIn[d] = true
		}
	}
	return signedIn
}

// activity adds the person's n further messages: a visitor's pages and product views, or a
// user's pages, views, cart additions and purchases on one of the linked devices.
func (g *generator) activity(i int, p Person, visitor bool, linked []string, n int) {
	for done := 0; done < n; done++ {
		if visitor {
			m := Msg{Person: i, Kind: KindPage, MessageID: g.newID(), AnonymousID: p.Devices[0], Event: pages[g.r.IntN(len(pages))]}
			if g.r.Float64() < 0.3 {
				m.Kind, m.Event, m.Product = KindTrack, "Product Viewed", products[g.r.IntN(len(products))]
			}
			g.add(m)
			continue
		}
		d := p.Devices[0]
		if len(linked) > 0 {
			d = linked[g.r.IntN(len(linked))]
		}
		m := Msg{Person: i, UserID: p.UserID, AnonymousID: d, MessageID: g.newID()}
		switch x := g.r.Float64(); {
		case x < 0.45:
			m.Kind, m.Event = KindPage, pages[g.r.IntN(len(pages))]
		case x < 0.75:
			m.Kind, m.Event, m.Product = KindTrack, "Product Viewed", products[g.r.IntN(len(products))]
		case x < 0.90:
			m.Kind, m.Event, m.Product = KindTrack, "Product Added", products[g.r.IntN(len(products))]
		default:
			m.Kind, m.Event, m.Product = KindTrack, PurchaseEvent, products[g.r.IntN(len(products))]
			m.Revenue = 10 + g.r.IntN(191)
		}
		g.add(m)
	}
}

// sendOrder orders the messages by event time across persons, then reorders locally
// (out-of-order delivery), and sets each message's offset from the run's base time.
func (g *generator) sendOrder(span time.Duration) []Msg {
	all := g.all
	sort.SliceStable(all, func(i, j int) bool { return all[i].at < all[j].at })
	for i := 0; i+1 < len(all); i++ {
		if g.r.Float64() < 0.10 {
			j := min(len(all)-1, i+1+g.r.IntN(20))
			all[i], all[j] = all[j], all[i]
		}
	}
	var sends []Msg
	for _, t := range all {
		t.Msg.Offset = t.at - span
		sends = append(sends, t.Msg)
	}
	return sends
}

// withDuplicates adds a redelivered copy of ~2% of the messages some messages later.
func (g *generator) withDuplicates(sends []Msg) []Msg {
	var out []Msg
	var pending []Msg
	for i, m := range sends {
		out = append(out, m)
		if g.r.Float64() < 0.02 {
			d := m
			d.Duplicate = true
			pending = append(pending, d)
		}
		if len(pending) > 0 && (i%37 == 0 || i == len(sends)-1) {
			out = append(out, pending...)
			pending = nil
		}
	}
	return out
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
