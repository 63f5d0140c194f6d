// Package privacytest holds small in-memory implementations of the privacy ports (a resolver,
// a holder, a blocklist with its read side) for the tests of the adapters and the CLI.
// Imported by tests only.
package privacytest

import (
	"context"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/serverless-cdp/cdp/internal/blocklist"
	"github.com/serverless-cdp/cdp/internal/privacy"
)

// Graph resolves identifiers to the profiles holding them (emails lower-cased).
type Graph struct {
	mu       sync.Mutex
	Profiles map[string][]string // profile -> identifiers
}

// Resolve implements privacy.Resolver.
func (g *Graph) Resolve(_ context.Context, ids []string) (privacy.Person, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var p privacy.Person
	for _, id := range ids {
		t, v, _ := strings.Cut(strings.TrimSpace(id), ":")
		if t == "email" {
			v = strings.ToLower(v)
		}
		if id = t + ":" + strings.TrimSpace(v); !slices.Contains(p.Identifiers, id) {
			p.Identifiers = append(p.Identifiers, id)
		}
	}
	keys := make([]string, 0, len(g.Profiles))
	for k := range g.Profiles {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for grew := true; grew; { // profiles sharing an identifier are one person (merged)
		grew = false
		for _, pid := range keys {
			held := g.Profiles[pid]
			if slices.Contains(p.Profiles, pid) || !slices.ContainsFunc(held, func(x string) bool { return slices.Contains(p.Identifiers, x) }) {
				continue
			}
			grew = true
			p.Profiles = append(p.Profiles, pid)
			for _, h := range held {
				if !slices.Contains(p.Identifiers, h) {
					p.Identifiers = append(p.Identifiers, h)
				}
			}
		}
	}
	return p, nil
}

// Holder keeps items per profile and kind; it erases what it exports.
type Holder struct {
	mu    sync.Mutex
	N     string
	Items map[string]map[string][]any // profile -> kind -> items
}

// Name implements privacy.Holder.
func (h *Holder) Name() string { return h.N }

// Export implements privacy.Holder.
func (h *Holder) Export(_ context.Context, p privacy.Person, emit func(string, any) error) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, pid := range p.Profiles {
		kinds := h.Items[pid]
		names := make([]string, 0, len(kinds))
		for k := range kinds {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			for _, it := range kinds[k] {
				if err := emit(k, it); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// Erase implements privacy.Holder.
func (h *Holder) Erase(_ context.Context, p privacy.Person) (map[string]int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	counts := map[string]int{}
	for _, pid := range p.Profiles {
		for k, its := range h.Items[pid] {
			counts[k] += len(its)
		}
		delete(h.Items, pid)
	}
	return counts, nil
}

// Blocklist is an in-memory blocklist with the read side the admin API shows.
type Blocklist struct {
	mu      sync.Mutex
	groups  map[string]privacy.SuppressionGroup
	ids     map[string][]string
	Blocked map[string]time.Duration
	Dropped map[string]int64
	Now     func() time.Time
}

// NewBlocklist returns an empty list.
func NewBlocklist() *Blocklist {
	return &Blocklist{groups: map[string]privacy.SuppressionGroup{}, ids: map[string][]string{},
		Blocked: map[string]time.Duration{}, Dropped: map[string]int64{}, Now: time.Now}
}

// Suppress implements privacy.Blocklist.
func (b *Blocklist) Suppress(_ context.Context, group string, ids, labels []string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.groups[group] = privacy.SuppressionGroup{Group: group, Labels: slices.Clone(labels), CreatedAt: b.Now().UTC()}
	b.ids[group] = slices.Clone(ids)
	return nil
}

// Unsuppress implements privacy.Blocklist.
func (b *Blocklist) Unsuppress(_ context.Context, ids []string) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for g, held := range b.ids {
		if slices.ContainsFunc(held, func(x string) bool { return slices.Contains(ids, x) }) {
			n += len(held)
			delete(b.ids, g)
			delete(b.groups, g)
		}
	}
	return n, nil
}

// BlockProfiles implements privacy.Blocklist.
func (b *Blocklist) BlockProfiles(_ context.Context, _ string, profiles []string, ttl time.Duration) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range profiles {
		b.Blocked[p] = ttl
	}
	return nil
}

// PropagationDelay implements privacy.Blocklist: none, in memory.
func (b *Blocklist) PropagationDelay() time.Duration { return 0 }

// Suppressions implements privacy.Suppressions.
func (b *Blocklist) Suppressions(context.Context) ([]privacy.SuppressionGroup, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]privacy.SuppressionGroup, 0, len(b.groups))
	for _, g := range b.groups {
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Group < out[j].Group })
	return out, nil
}

// DroppedBySource implements privacy.Suppressions.
func (b *Blocklist) DroppedBySource(context.Context) (map[string]int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]int64, len(b.Dropped))
	for k, v := range b.Dropped {
		out[k] = v
	}
	return out, nil
}

// Ann is a person known by two devices, an email and a user id, merged from two profiles.
func Ann() *Graph {
	return &Graph{Profiles: map[string][]string{
		"prof_ann1": {"email:ann@example.com", "anonymous_id:dev-a"},
		"prof_ann2": {"user_id:ann-77", "anonymous_id:dev-b", "email:ann@example.com"},
		"prof_bob":  {"email:bob@example.com"},
	}}
}

// AnnHolder holds events and traits of Ann's two profiles and Bob's.
func AnnHolder(name string) *Holder {
	return &Holder{N: name, Items: map[string]map[string][]any{
		"prof_ann1": {"events": {map[string]any{"event": "Signed Up", "city": "Paris"}}, "traits": {map[string]any{"name": "Ann Smith"}}},
		"prof_ann2": {"events": {map[string]any{"event": "Order Completed", "total": 42}}},
		"prof_bob":  {"events": {map[string]any{"event": "Signed Up"}}},
	}}
}

// Service is a privacy service over the in-memory store and these fakes: Ann's graph, one
// holder "identity" and the requests' own holder, with the given inline budget.
func Service(inline time.Duration) (*privacy.Service, *privacy.MemStore, *Blocklist, *Holder) {
	h := blocklist.NewHasher([]byte("privacytest-key-0123456789"))
	st := privacy.NewMemStore(0, nil)
	bl := NewBlocklist()
	holder := AnnHolder("identity")
	rn := privacy.NewRunner(privacy.Options{
		Requests: st, Resolver: Ann(), Blocklist: bl, Hasher: h,
		Holders: []privacy.Holder{holder, privacy.NewRequestsHolder(st, h)},
	})
	return privacy.NewService(rn, bl, privacy.ServiceOptions{InlineBudget: inline}), st, bl, holder
}
