package destination

import (
	"context"
	"sync"
)

// memStore is the in-memory Store: the same semantics as the DynamoDB adapter (conditional
// create, versioned replace, not-found on delete), for tests without an emulator. Values are
// kept encoded, so callers never share maps or slices with the store.
type memStore struct {
	mu    sync.Mutex
	items map[string]memItem
}

type memItem struct {
	doc     string
	version int64
}

// NewMemStore returns an empty in-memory Store.
func NewMemStore() Store { return &memStore{items: map[string]memItem{}} }

// NewMemService returns a Service over a fresh in-memory store.
func NewMemService(opts ...Option) *Service { return NewServiceWith(NewMemStore(), opts...) }

func (m *memStore) Get(_ context.Context, id string) (Destination, error) {
	m.mu.Lock()
	it, ok := m.items[id]
	m.mu.Unlock()
	if !ok {
		return Destination{}, ErrNotFound
	}
	return decodeDoc(it.doc)
}

func (m *memStore) List(context.Context) ([]Destination, error) {
	m.mu.Lock()
	docs := make([]string, 0, len(m.items))
	for _, it := range m.items {
		docs = append(docs, it.doc)
	}
	m.mu.Unlock()
	out := make([]Destination, 0, len(docs))
	for _, s := range docs {
		d, err := decodeDoc(s)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

func (m *memStore) Put(_ context.Context, d Destination, prev int64) error {
	body, err := encodeDoc(d)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, exists := m.items[d.ID]
	if (prev == 0 && exists) || (prev != 0 && (!exists || cur.version != prev)) {
		return ErrConflict
	}
	m.items[d.ID] = memItem{doc: body, version: d.Version}
	return nil
}

func (m *memStore) Delete(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.items[id]; !ok {
		return ErrNotFound
	}
	delete(m.items, id)
	return nil
}
