package privacy

import (
	"context"
	"errors"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// fakeGraph is an identity graph: profiles and the identifiers each holds. It resolves as the
// identity stage does (emails lower-cased), returning the union over the identifiers named.
type fakeGraph struct {
	mu       sync.Mutex
	profiles map[string][]string // profile -> identifiers
	// onResolve runs before each Resolve (a merge happening meanwhile).
	onResolve func(g *fakeGraph, n int)
	calls     int
}

func (g *fakeGraph) Resolve(_ context.Context, ids []string) (Person, error) {
	g.mu.Lock()
	g.calls++
	hook, n := g.onResolve, g.calls
	g.mu.Unlock()
	if hook != nil {
		hook(g, n)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	var p Person
	for _, id := range ids {
		p.Identifiers = appendNew(p.Identifiers, normalize(id))
	}
	for grew := true; grew; { // profiles sharing an identifier are one person (merged)
		grew = false
		for _, pid := range sortedKeys(g.profiles) {
			held := g.profiles[pid]
			if slices.Contains(p.Profiles, pid) || !slices.ContainsFunc(held, func(x string) bool { return slices.Contains(p.Identifiers, x) }) {
				continue
			}
			grew = true
			p.Profiles = append(p.Profiles, pid)
			for _, h := range held {
				p.Identifiers = appendNew(p.Identifiers, h)
			}
		}
	}
	sort.Strings(p.Profiles)
	return p, nil
}

func appendNew(xs []string, x string) []string {
	if slices.Contains(xs, x) {
		return xs
	}
	return append(xs, x)
}

// fakeHolder keeps items per profile and kind. It erases what it exports.
type fakeHolder struct {
	mu    sync.Mutex
	name  string
	items map[string]map[string][]string // profile -> kind -> items
	// onErase runs in each Erase (a slow store moving the clock, a failure).
	onErase func() error
	erases  int
}

func (h *fakeHolder) Name() string { return h.name }

func (h *fakeHolder) Export(_ context.Context, p Person, emit func(string, any) error) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, pid := range p.Profiles {
		kinds := h.items[pid]
		for _, k := range sortedKeys(kinds) {
			for _, it := range kinds[k] {
				if err := emit(k, map[string]string{"profile": pid, "value": it}); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (h *fakeHolder) Erase(_ context.Context, p Person) (map[string]int, error) {
	h.mu.Lock()
	h.erases++
	hook := h.onErase
	h.mu.Unlock()
	if hook != nil {
		if err := hook(); err != nil {
			return nil, err
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	counts := map[string]int{}
	for _, pid := range p.Profiles {
		for k, its := range h.items[pid] {
			counts[k] += len(its)
		}
		delete(h.items, pid)
	}
	return counts, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// fakeBlocklist records what the runner wrote.
type fakeBlocklist struct {
	mu         sync.Mutex
	suppressed map[string][]string // group -> identifiers
	labels     map[string][]string
	blocked    map[string]time.Duration
	delay      time.Duration
}

func newFakeBlocklist(delay time.Duration) *fakeBlocklist {
	return &fakeBlocklist{suppressed: map[string][]string{}, labels: map[string][]string{}, blocked: map[string]time.Duration{}, delay: delay}
}

func (b *fakeBlocklist) Suppress(_ context.Context, group string, ids, labels []string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(ids) != len(labels) {
		return errors.New("labels do not match identifiers")
	}
	b.suppressed[group] = slices.Clone(ids)
	b.labels[group] = slices.Clone(labels)
	return nil
}

func (b *fakeBlocklist) Unsuppress(_ context.Context, ids []string) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for g, held := range b.suppressed {
		if slices.ContainsFunc(held, func(x string) bool { return slices.Contains(ids, x) }) {
			n += len(held)
			delete(b.suppressed, g)
		}
	}
	return n, nil
}

func (b *fakeBlocklist) BlockProfiles(_ context.Context, _ string, profiles []string, ttl time.Duration) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range profiles {
		b.blocked[p] = ttl
	}
	return nil
}

func (b *fakeBlocklist) PropagationDelay() time.Duration { return b.delay }

func (b *fakeBlocklist) isSuppressed(id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, held := range b.suppressed {
		if slices.Contains(held, id) {
			return true
		}
	}
	return false
}

// fakeNotifier records notices; the first failFirst calls answer "failed".
type fakeNotifier struct {
	mu        sync.Mutex
	notices   []Notice
	failFirst int
}

func (n *fakeNotifier) Notify(_ context.Context, x Notice) ([]NoticeOutcome, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.notices = append(n.notices, x)
	if len(n.notices) <= n.failFirst {
		return []NoticeOutcome{{DestinationID: "dst_1", Status: "failed", Error: "503"}}, nil
	}
	return []NoticeOutcome{{DestinationID: "dst_1", Status: "delivered"}}, nil
}

func (n *fakeNotifier) count() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.notices)
}

var errCrash = errors.New("crash")

// crashStore is a MemStore whose crashAt-th Update is applied and then reported as a crash:
// the process dies right after a step's outcome is persisted.
type crashStore struct {
	RequestStore
	mu      sync.Mutex
	updates int
	crashAt int
}

func (s *crashStore) Update(ctx context.Context, id string, fn func(*Request) error) error {
	if err := s.RequestStore.Update(ctx, id, fn); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.updates++
	if s.updates == s.crashAt {
		return errCrash
	}
	return nil
}

// world is one test setup: Ann (two devices, an email, a user id) merged from two profiles,
// and Bob, in three holders.
type world struct {
	clock    *clock
	store    *crashStore
	graph    *fakeGraph
	holders  []*fakeHolder
	block    *fakeBlocklist
	notifier *fakeNotifier
	sleeps   []time.Duration
}

func newWorld() *world {
	return newWorldOn(func(now func() time.Time) RequestStore { return NewMemStore(0, now) })
}

// newWorldOn is newWorld on the store newStore returns.
func newWorldOn(newStore func(now func() time.Time) RequestStore) *world {
	w := &world{
		clock: &clock{t: time.Now().UTC()},
		graph: &fakeGraph{profiles: map[string][]string{
			"prof_ann1": {"email:ann@example.com", "anonymous_id:dev-a"},
			"prof_ann2": {"user_id:ann-77", "anonymous_id:dev-b", "email:ann@example.com"},
			"prof_bob":  {"email:bob@example.com"},
		}},
		block:    newFakeBlocklist(3 * time.Second),
		notifier: &fakeNotifier{},
	}
	w.store = &crashStore{RequestStore: newStore(w.clock.now)}
	data := func(kinds ...string) map[string]map[string][]string {
		out := map[string]map[string][]string{}
		for _, p := range []string{"prof_ann1", "prof_ann2", "prof_bob"} {
			out[p] = map[string][]string{}
			for _, k := range kinds {
				out[p][k] = []string{k + " of " + p + " Paris", k + " 2 of " + p}
			}
		}
		return out
	}
	w.holders = []*fakeHolder{
		{name: "identity", items: data("events", "traits", "identifiers")},
		{name: "segments", items: data("audiences", "computed_traits")},
		{name: "deliveries", items: data("deliveries")},
	}
	return w
}

func (w *world) runner(opts ...func(*Options)) *Runner {
	o := Options{
		Requests: w.store, Resolver: w.graph, Blocklist: w.block, Notifier: w.notifier, Hasher: testHasher,
		Now: w.clock.now,
		Sleep: func(_ context.Context, d time.Duration) error {
			w.sleeps = append(w.sleeps, d)
			w.clock.advance(d)
			return nil
		},
	}
	for _, h := range w.holders {
		o.Holders = append(o.Holders, h)
	}
	for _, f := range opts {
		f(&o)
	}
	return NewRunner(o)
}

func (w *world) submit(typ string, ids ...string) Request {
	r, err := NewRequest(Input{Type: typ, Identifiers: ids, RequestedBy: "tok_1 (ops)"}, testHasher, w.clock.now())
	if err != nil {
		panic(err)
	}
	if err := w.store.Create(context.Background(), r); err != nil {
		panic(err)
	}
	w.clock.advance(time.Millisecond) // ids of later requests sort later
	return r
}

// left is every item the holders still keep, as text.
func (w *world) left() string {
	var b strings.Builder
	for _, h := range w.holders {
		h.mu.Lock()
		for _, p := range sortedKeys(h.items) {
			for _, k := range sortedKeys(h.items[p]) {
				b.WriteString(h.name + "/" + p + "/" + k + ";")
			}
		}
		h.mu.Unlock()
	}
	return b.String()
}
