package privacy

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/serverless-cdp/cdp/internal/store/docs"
)

// MemStore is the in-memory RequestStore (tests, and the conformance suite's reference): the
// requests in a docs.Mem, the export results in a map.
type MemStore struct {
	*docs.Mem[Request]
	mu      sync.Mutex
	exports map[string]memExport
	ttl     time.Duration
	now     func() time.Time
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
	return &MemStore{Mem: docs.NewMem(requestKind), exports: map[string]memExport{}, ttl: ttl, now: now}
}

// ListAbout implements RequestStore.
func (m *MemStore) ListAbout(ctx context.Context, hashes []string) ([]Request, error) {
	all, err := m.All(ctx)
	if err != nil {
		return nil, err
	}
	set := toSet(hashes)
	var out []Request
	for _, r := range all {
		if intersects(r.Hashes, set) {
			out = append(out, r)
		}
	}
	return out, nil
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
