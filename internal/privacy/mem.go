package privacy

import (
	"context"
	"slices"
	"sort"
	"sync"
	"time"
)

// MemStore is the in-memory RequestStore (tests, and the conformance suite's reference).
type MemStore struct {
	mu       sync.Mutex
	requests map[string]Request
	exports  map[string]memExport
	ttl      time.Duration
	now      func() time.Time
}

type memExport struct {
	doc     []byte
	expires time.Time
}

// NewMemStore returns an empty store; exports expire after ttl (0: DefaultExportTTL) on the
// clock now (nil: time.Now).
func NewMemStore(ttl time.Duration, now func() time.Time) *MemStore {
	if ttl <= 0 {
		ttl = DefaultExportTTL
	}
	if now == nil {
		now = time.Now
	}
	return &MemStore{requests: map[string]Request{}, exports: map[string]memExport{}, ttl: ttl, now: now}
}

// Create implements RequestStore.
func (m *MemStore) Create(_ context.Context, r Request) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.requests[r.ID]; ok {
		return ErrConflict
	}
	r.Version = 1
	m.requests[r.ID] = r.clone()
	return nil
}

// Get implements RequestStore.
func (m *MemStore) Get(_ context.Context, id string) (Request, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.requests[id]
	if !ok {
		return Request{}, ErrNotFound
	}
	return r.clone(), nil
}

func (m *MemStore) sorted(desc bool) []Request {
	out := make([]Request, 0, len(m.requests))
	for _, r := range m.requests {
		out = append(out, r.clone())
	}
	sort.Slice(out, func(i, j int) bool { return (out[i].ID < out[j].ID) != desc })
	return out
}

// List implements RequestStore.
func (m *MemStore) List(_ context.Context, limit int, next string) ([]Request, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if limit <= 0 || limit > 100 {
		limit = 100
	}
	var out []Request
	for _, r := range m.sorted(true) {
		if next != "" && r.ID >= next {
			continue
		}
		out = append(out, r)
		if len(out) == limit {
			break
		}
	}
	cursor := ""
	if len(out) == limit {
		for _, r := range m.requests {
			if r.ID < out[len(out)-1].ID {
				cursor = out[len(out)-1].ID
				break
			}
		}
	}
	return out, cursor, nil
}

// Update implements RequestStore.
func (m *MemStore) Update(_ context.Context, id string, fn func(*Request) error) error {
	m.mu.Lock()
	cur, ok := m.requests[id]
	m.mu.Unlock()
	if !ok {
		return ErrNotFound
	}
	for range maxUpdateRetries {
		next := cur.clone()
		if err := fn(&next); err != nil {
			return err
		}
		next.ID, next.Version = id, cur.Version+1
		m.mu.Lock()
		now, ok := m.requests[id]
		if ok && now.Version == cur.Version {
			m.requests[id] = next.clone()
			m.mu.Unlock()
			return nil
		}
		m.mu.Unlock()
		if !ok {
			return ErrNotFound
		}
		cur = now
	}
	return ErrConflict
}

// ListAbout implements RequestStore.
func (m *MemStore) ListAbout(_ context.Context, hashes []string) ([]Request, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	set := toSet(hashes)
	var out []Request
	for _, r := range m.sorted(false) {
		if intersects(r.Hashes, set) {
			out = append(out, r)
		}
	}
	return out, nil
}

// Pending implements RequestStore.
func (m *MemStore) Pending(_ context.Context) ([]Request, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.DeleteFunc(m.sorted(false), Request.Terminal), nil
}

// PutExport implements RequestStore.
func (m *MemStore) PutExport(_ context.Context, id string, doc []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.exports[id] = memExport{doc: slices.Clone(doc), expires: m.now().Add(m.ttl)}
	return nil
}

// GetExport implements RequestStore.
func (m *MemStore) GetExport(_ context.Context, id string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.exports[id]
	if !ok || !m.now().Before(e.expires) {
		return nil, ErrNotFound
	}
	return slices.Clone(e.doc), nil
}

// DeleteExport implements RequestStore.
func (m *MemStore) DeleteExport(_ context.Context, id string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.exports[id]
	delete(m.exports, id)
	return ok && m.now().Before(e.expires), nil
}

func toSet(xs []string) map[string]bool {
	set := make(map[string]bool, len(xs))
	for _, x := range xs {
		set[x] = true
	}
	return set
}
