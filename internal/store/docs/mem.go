package docs

import (
	"context"
	"slices"
	"sort"
	"sync"
)

// Mem is the in-memory version of Dynamo: the same Create, Get, List, Update, Pending and All,
// on a map (tests, and the conformance suites' reference).
type Mem[T any] struct {
	mu   sync.Mutex
	docs map[string]T
	k    Kind[T]
}

// NewMem returns an empty store of kind k.
func NewMem[T any](k Kind[T]) *Mem[T] { return &Mem[T]{docs: map[string]T{}, k: k} }

// Create stores a new document at version 1 (Conflict if its id exists).
func (m *Mem[T]) Create(_ context.Context, d T) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	id := m.k.ID(&d)
	if _, ok := m.docs[id]; ok {
		return m.k.Conflict
	}
	*m.k.Version(&d) = 1
	m.docs[id] = m.k.Clone(d)
	return nil
}

// Get returns a copy of a document (NotFound if absent).
func (m *Mem[T]) Get(_ context.Context, id string) (T, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.docs[id]
	if !ok {
		var zero T
		return zero, m.k.NotFound
	}
	return m.k.Clone(d), nil
}

// sorted copies every document, by id (desc: newest first). The caller holds mu.
func (m *Mem[T]) sorted(desc bool) []T {
	out := make([]T, 0, len(m.docs))
	for _, d := range m.docs {
		out = append(out, m.k.Clone(d))
	}
	sort.Slice(out, func(a, b int) bool { return (m.k.ID(&out[a]) < m.k.ID(&out[b])) != desc })
	return out
}

// List returns up to limit documents (1 to 100), newest id first, and the cursor of the next
// page ("" at the end).
func (m *Mem[T]) List(_ context.Context, limit int, next string) ([]T, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if limit <= 0 || limit > 100 {
		limit = 100
	}
	all := m.sorted(true)
	var out []T
	for i := range all {
		if next != "" && m.k.ID(&all[i]) >= next {
			continue
		}
		out = append(out, all[i])
		if len(out) == limit {
			if i < len(all)-1 {
				return out, m.k.ID(&all[i]), nil
			}
			break
		}
	}
	return out, "", nil
}

// Update applies fn to a copy of the document and stores it if nobody stored another version
// meanwhile, else applies fn again to the newer one (at most MaxUpdateRetries times).
func (m *Mem[T]) Update(_ context.Context, id string, fn func(*T) error) error {
	m.mu.Lock()
	cur, ok := m.docs[id]
	m.mu.Unlock()
	if !ok {
		return m.k.NotFound
	}
	for range MaxUpdateRetries {
		next := m.k.Clone(cur)
		if err := fn(&next); err != nil {
			return err
		}
		*m.k.Version(&next) = *m.k.Version(&cur) + 1
		m.mu.Lock()
		now, ok := m.docs[id]
		if ok && *m.k.Version(&now) == *m.k.Version(&cur) {
			m.docs[id] = m.k.Clone(next)
			m.mu.Unlock()
			return nil
		}
		m.mu.Unlock()
		if !ok {
			return m.k.NotFound
		}
		cur = now
	}
	return m.k.Conflict
}

// Pending returns the unfinished documents, oldest id first.
func (m *Mem[T]) Pending(_ context.Context) ([]T, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.DeleteFunc(m.sorted(false), func(d T) bool { return m.k.Terminal(&d) }), nil
}

// All returns every document, oldest id first.
func (m *Mem[T]) All(_ context.Context) ([]T, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sorted(false), nil
}
