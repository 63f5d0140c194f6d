package identity

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/tracking"
)

// world is generated ground truth: persons with devices, anonymous ids, e-mails and user ids,
// and the events they send.
type world struct {
	persons []*person
	events  []tracking.Record // each message once, in generation order
	owner   map[string]int    // messageId → person index
}

type person struct {
	uid     string
	emails  []string
	devices []device
	plan    Trait // the newest plan trait sent, the expected value
	ids     map[Identifier]bool
	msgs    int
}

type device struct{ anon, devID string }

func genWorld(r *rand.Rand, persons int) *world {
	w := &world{owner: map[string]int{}}
	seq := 0
	for pi := 0; pi < persons; pi++ {
		p := &person{ids: map[Identifier]bool{}}
		if r.IntN(4) > 0 {
			p.uid = fmt.Sprintf("user-%d", pi)
		}
		for e := r.IntN(3); e > 0; e-- {
			p.emails = append(p.emails, fmt.Sprintf("P%d.mail%d@Example.com", pi, e))
		}
		nd := 1 + r.IntN(3)
		if p.uid == "" && len(p.emails) == 0 {
			nd = 1 // nothing could link a second device
		}
		for d := 0; d < nd; d++ {
			dev := device{anon: fmt.Sprintf("anon-%d-%d", pi, d)}
			if r.IntN(2) == 0 {
				dev.devID = fmt.Sprintf("dev-%d-%d", pi, d)
			}
			p.devices = append(p.devices, dev)
		}
		w.persons = append(w.persons, p)
		emit := func(typ string, d device, uid string, traits map[string]any, ctxTraits map[string]any) {
			seq++
			m := tracking.Message{
				Type: typ, MessageID: fmt.Sprintf("msg-%05d", seq), UserID: uid, AnonymousID: d.anon,
				Timestamp: t0.Add(time.Duration(r.IntN(100000)) * time.Second),
			}
			m.ReceivedAt = m.Timestamp
			if typ == "track" {
				m.Event = "Clicked"
			}
			ctx := map[string]any{}
			if d.devID != "" {
				ctx["device"] = map[string]any{"id": d.devID}
			}
			if ctxTraits != nil {
				ctx["traits"] = ctxTraits
			}
			m.Context, _ = json.Marshal(ctx)
			if traits != nil {
				m.Traits, _ = json.Marshal(traits)
				if plan, ok := traits["plan"]; ok {
					v, _ := json.Marshal(plan)
					t := Trait{Value: v, At: m.Timestamp, MessageID: m.MessageID}
					if p.plan.Value == nil || t.newerThan(p.plan) {
						p.plan = t
					}
				}
			}
			ex := Extract(&m)
			for _, id := range ex.IDs {
				p.ids[id] = true
			}
			p.msgs++
			w.owner[m.MessageID] = pi
			w.events = append(w.events, tracking.Record{SourceID: "src", Message: m})
		}
		for _, d := range p.devices {
			// Anonymous browsing first…
			for k := r.IntN(4); k > 0; k-- {
				emit("page", d, "", nil, nil)
			}
			// …then one linking event per device: a login or an e-mail.
			traits := map[string]any{"plan": fmt.Sprintf("plan-%d", r.IntN(5))}
			if len(p.emails) > 0 {
				// Without a user id, the first e-mail is what links the devices.
				traits["email"] = p.emails[0]
				if p.uid != "" {
					traits["email"] = p.emails[r.IntN(len(p.emails))]
				}
			}
			emit("identify", d, p.uid, traits, nil)
			for k := r.IntN(3); k > 0; k-- {
				var ct map[string]any
				if len(p.emails) > 0 && r.IntN(2) == 0 {
					ct = map[string]any{"email": p.emails[r.IntN(len(p.emails))]}
				}
				emit("track", d, p.uid, nil, ct)
			}
		}
		// Every e-mail shows up on some device.
		for _, e := range p.emails {
			emit("identify", p.devices[r.IntN(len(p.devices))], p.uid, map[string]any{"email": e, "plan": fmt.Sprintf("plan-%d", r.IntN(5))}, nil)
		}
	}
	return w
}

// connected checks that each person's identifiers are linked by their events (so one profile
// per person is exactly what flat matching allows) and that persons share no identifier.
func (w *world) connected(t testing.TB) {
	t.Helper()
	parent := map[Identifier]Identifier{}
	var find func(Identifier) Identifier
	find = func(x Identifier) Identifier {
		if p, ok := parent[x]; ok && p != x {
			r := find(p)
			parent[x] = r
			return r
		}
		parent[x] = x
		return x
	}
	for _, e := range w.events {
		ids := Extract(&e.Message).IDs
		for _, id := range ids[1:] {
			parent[find(id)] = find(ids[0])
		}
	}
	owner := map[Identifier]int{}
	for pi, p := range w.persons {
		roots := map[Identifier]bool{}
		for id := range p.ids {
			roots[find(id)] = true
			if o, dup := owner[id]; dup {
				t.Fatalf("generator: persons %d and %d share %s", o, pi, id)
			}
			owner[id] = pi
		}
		if len(roots) != 1 {
			t.Fatalf("generator: person %d's identifiers form %d unlinked groups", pi, len(roots))
		}
	}
}

// delivery returns the events shuffled, with about dupRate of them delivered twice.
func (w *world) delivery(r *rand.Rand, dupRate float64) []tracking.Record {
	out := append([]tracking.Record(nil), w.events...)
	for _, e := range w.events {
		if r.Float64() < dupRate {
			out = append(out, e)
		}
	}
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// graphSnapshot is the whole stored identity graph.
type graphSnapshot struct {
	live       map[string]*Profile
	tombstones map[string]*Profile
	index      map[Identifier]string
	msgs       map[string]string // messageId → profile written
	seqs       map[string]int64  // messageId → sequence number of its stamp (with the profile written)
}

func snapshot(t testing.TB, e *env) *graphSnapshot { return e.data.snapshot(t) }

func (g *graphSnapshot) resolve(id string) *Profile {
	for i := 0; i < 100; i++ {
		if p, ok := g.live[id]; ok {
			return p
		}
		tb, ok := g.tombstones[id]
		if !ok {
			return nil
		}
		id = tb.MergedInto
	}
	return nil
}

// checkInvariants verifies the graph is consistent: every identifier in exactly one live
// profile and indexed to it, limits kept, every event counted exactly once, tombstones reachable.
func checkInvariants(t testing.TB, g *graphSnapshot, rules *Compiled) {
	t.Helper()
	holder := map[Identifier]string{}
	for _, p := range g.live {
		counts := map[string]int{}
		for _, r := range p.Identifiers {
			if other, dup := holder[r.Identifier]; dup {
				t.Errorf("identifier %s in two live profiles %s and %s", r.Identifier, other, p.ID)
			}
			holder[r.Identifier] = p.ID
			counts[r.Type]++
		}
		for typ, n := range counts {
			if n > rules.Limit(typ) {
				t.Errorf("profile %s holds %d %s values (limit %d)", p.ID, n, typ, rules.Limit(typ))
			}
		}
		for _, from := range p.MergedFrom {
			if r := g.resolve(from); r == nil || r.ID != p.ID {
				t.Errorf("profile %s lists %s as merged-from, which resolves elsewhere", p.ID, from)
			}
		}
	}
	for id, pid := range g.index {
		p := g.resolve(pid)
		if p == nil {
			t.Errorf("identifier %s points at %s, which resolves to nothing", id, pid)
			continue
		}
		if holder[id] != p.ID {
			t.Errorf("identifier %s resolves to %s but is held by %q (lost identifier)", id, p.ID, holder[id])
		}
	}
	for id := range holder {
		if _, ok := g.index[id]; !ok {
			t.Errorf("identifier %s held by %s has no index item", id, holder[id])
		}
	}
	perProfile := map[string]int64{}
	for mid, pid := range g.msgs {
		p := g.resolve(pid)
		if p == nil {
			t.Errorf("message %s points at %s, which resolves to nothing", mid, pid)
			continue
		}
		perProfile[p.ID]++
	}
	for _, p := range g.live {
		if perProfile[p.ID] != p.EventCount {
			t.Errorf("profile %s counts %d events but %d are stored for it", p.ID, p.EventCount, perProfile[p.ID])
		}
	}
	for id, tb := range g.tombstones {
		if r := g.resolve(id); r == nil || !containsStr(r.MergedFrom, id) {
			t.Errorf("tombstone %s (→%s) not reachable from its survivor", id, tb.MergedInto)
		}
	}
	checkStamps(t, g)
}

// checkStamps verifies the stamps of the stored events: per profile events were committed
// to, no sequence number is given twice and none is above a live profile's counter. Numbers
// may be missing: a stamp allocated to an event found stored already is void (sent in
// change.Record.Void), and one allocated by a write interrupted before its event was stored
// is never used; with dense set, none may be missing (no writer raced another and none
// failed).
func checkStamps(t testing.TB, g *graphSnapshot) {
	t.Helper()
	checkStampsOf(t, g, false)
}

func checkStampsOf(t testing.TB, g *graphSnapshot, dense bool) {
	t.Helper()
	seen := map[string]map[int64]string{}
	for mid, pid := range g.msgs {
		if seen[pid] == nil {
			seen[pid] = map[int64]string{}
		}
		s := g.seqs[mid]
		if other, dup := seen[pid][s]; dup {
			t.Errorf("stamp {%s %d} given to two messages %s and %s", pid, s, other, mid)
		}
		seen[pid][s] = mid
	}
	for pid, seqs := range seen {
		for s := range seqs {
			if s < 1 {
				t.Errorf("profile %s: event %s stamped %d", pid, seqs[s], s)
			}
			if p, live := g.live[pid]; live && s > p.Seq {
				t.Errorf("profile %s: event %s stamped %d, above the counter %d", pid, seqs[s], s, p.Seq)
			}
		}
		if !dense {
			continue
		}
		for s := int64(1); s <= int64(len(seqs)); s++ {
			if _, ok := seqs[s]; !ok {
				t.Errorf("profile %s: %d events stamped but seq %d is missing (not dense)", pid, len(seqs), s)
			}
		}
		if p, live := g.live[pid]; live && p.Seq != int64(len(seqs)) {
			t.Errorf("profile %s: counter %d, %d events stamped", pid, p.Seq, len(seqs))
		}
	}
	for pid, p := range g.live {
		if _, any := seen[pid]; !any && p.Seq != 0 {
			t.Errorf("profile %s: counter %d, no event stamped", pid, p.Seq)
		}
	}
}

// checkGroundTruth compares the live profiles with the persons: one profile per person, with
// exactly the person's identifiers, events and newest plan.
func checkGroundTruth(t testing.TB, g *graphSnapshot, w *world) {
	t.Helper()
	if len(g.live) != len(w.persons) {
		t.Errorf("%d live profiles for %d persons", len(g.live), len(w.persons))
	}
	for pi, p := range w.persons {
		var any Identifier
		for id := range p.ids {
			any = id
			break
		}
		pid, ok := g.index[any]
		prof := g.resolve(pid)
		if !ok || prof == nil {
			t.Errorf("person %d: identifier %s not found", pi, any)
			continue
		}
		want := make([]string, 0, len(p.ids))
		for id := range p.ids {
			want = append(want, id.String())
		}
		sort.Strings(want)
		got := strings.Fields(idsString(prof))
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("person %d: profile %s has %v, want %v", pi, prof.ID, got, want)
		}
		if prof.EventCount != int64(p.msgs) {
			t.Errorf("person %d: %d events, want %d", pi, prof.EventCount, p.msgs)
		}
		if got := string(prof.Traits["plan"].Value); got != string(p.plan.Value) {
			t.Errorf("person %d: plan %s, want %s", pi, got, p.plan.Value)
		}
	}
}
