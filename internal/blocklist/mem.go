package blocklist

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"
)

// MemStore is the in-memory Store (tests, local runs without DynamoDB).
type MemStore struct {
	h   Hasher
	opt Options

	mu      sync.Mutex
	entries map[string]entry
	version int64
	dropped map[string]int64
}

var _ Store = (*MemStore)(nil)

// NewMemStore returns an empty in-memory list hashing with h.
func NewMemStore(h Hasher, opt Options) *MemStore {
	return &MemStore{h: h, opt: opt.withDefaults(), entries: map[string]entry{}, dropped: map[string]int64{}}
}

func (m *MemStore) put(es []entry) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range es {
		if _, ok := m.entries[e.key()]; !ok {
			m.entries[e.key()] = e
		}
	}
	m.version++
}

// Suppress implements Store.
func (m *MemStore) Suppress(_ context.Context, group string, identifiers, labels []string) error {
	es, err := identifierEntries(m.h, group, identifiers, labels, m.opt.Now())
	if err != nil {
		return fmt.Errorf("suppress: %w", err)
	}
	m.put(es)
	return nil
}

// BlockProfiles implements Store.
func (m *MemStore) BlockProfiles(_ context.Context, group string, profiles []string, ttl time.Duration) error {
	es, err := profileEntries(m.h, group, profiles, ttl, m.opt.Now())
	if err != nil {
		return fmt.Errorf("block profiles: %w", err)
	}
	m.put(es)
	return nil
}

// Unsuppress implements Store.
func (m *MemStore) Unsuppress(_ context.Context, identifiers []string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rm := toRemove(m.all(), hashSet(m.h, identifiers))
	for _, e := range rm {
		delete(m.entries, e.key())
	}
	m.version++
	return len(rm), nil
}

func (m *MemStore) all() []entry {
	out := make([]entry, 0, len(m.entries))
	for _, e := range m.entries {
		out = append(out, e)
	}
	return out
}

// PropagationDelay implements Store.
func (m *MemStore) PropagationDelay() time.Duration { return propagationDelay(m.opt.CheckInterval) }

// Suppressions implements Store.
func (m *MemStore) Suppressions(context.Context) ([]Group, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return groupsOf(m.all()), nil
}

// CountDropped implements Store.
func (m *MemStore) CountDropped(_ context.Context, source string, n int64) error {
	if n <= 0 {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.dropped[source] += n
	return nil
}

// DroppedBySource implements Store.
func (m *MemStore) DroppedBySource(context.Context) (map[string]int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.dropped), nil
}

// Version implements Store.
func (m *MemStore) Version(context.Context) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.version, nil
}

// Load implements Store.
func (m *MemStore) Load(context.Context) (Snapshot, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return snapshotOf(m.all(), m.opt.Now()), nil
}
