package replay

import (
	"context"
	"errors"
	"slices"
	"sort"
	"sync"
)

// ErrNotFound is returned for an unknown job.
var ErrNotFound = errors.New("replay: job not found")

// ErrNoArchive: the deployment has no archive configured (CDP_ARCHIVE_BUCKET or
// CDP_ARCHIVE_DIR), so there is nothing to replay.
var ErrNoArchive = errors.New("replay: no archive is configured (CDP_ARCHIVE_BUCKET or CDP_ARCHIVE_DIR)")

// ErrConflict is returned when creating a job whose id exists, or when Update gave up under
// contention.
var ErrConflict = errors.New("replay: conflict")

// maxUpdateRetries bounds the re-reads of Update under contention.
const maxUpdateRetries = 20

// JobStore keeps replay jobs. DynamoStore is the adapter on the shared table; MemStore the
// in-memory fake; one conformance suite runs on both.
type JobStore interface {
	// Create stores a new job (Version 1); ErrConflict if its id exists.
	Create(ctx context.Context, j Job) error
	// Get returns a job or ErrNotFound.
	Get(ctx context.Context, id string) (Job, error)
	// List returns up to limit jobs, newest first, and a cursor for the next page ("" at the
	// end).
	List(ctx context.Context, limit int, next string) ([]Job, string, error)
	// Update applies fn to the current job and writes it back conditionally on its version
	// (Version+1), re-reading and re-applying fn when another writer got there first. An
	// error from fn aborts and is returned as is; ErrNotFound for an unknown id.
	Update(ctx context.Context, id string, fn func(*Job) error) error
	// Pending returns the jobs neither completed nor failed, oldest first.
	Pending(ctx context.Context) ([]Job, error)
}

// MemStore is the in-memory JobStore.
type MemStore struct {
	mu   sync.Mutex
	jobs map[string]Job
}

var _ JobStore = (*MemStore)(nil)

// NewMemStore returns an empty store.
func NewMemStore() *MemStore { return &MemStore{jobs: map[string]Job{}} }

// Create implements JobStore.
func (m *MemStore) Create(_ context.Context, j Job) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.jobs[j.ID]; ok {
		return ErrConflict
	}
	j.Version = 1
	m.jobs[j.ID] = j.clone()
	return nil
}

// Get implements JobStore.
func (m *MemStore) Get(_ context.Context, id string) (Job, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	j, ok := m.jobs[id]
	if !ok {
		return Job{}, ErrNotFound
	}
	return j.clone(), nil
}

func (m *MemStore) sorted(desc bool) []Job {
	out := make([]Job, 0, len(m.jobs))
	for _, j := range m.jobs {
		out = append(out, j.clone())
	}
	sort.Slice(out, func(a, b int) bool { return (out[a].ID < out[b].ID) != desc })
	return out
}

// List implements JobStore.
func (m *MemStore) List(_ context.Context, limit int, next string) ([]Job, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if limit <= 0 || limit > 100 {
		limit = 100
	}
	all := m.sorted(true)
	var out []Job
	for i, j := range all {
		if next != "" && j.ID >= next {
			continue
		}
		out = append(out, j)
		if len(out) == limit {
			if i < len(all)-1 {
				return out, j.ID, nil
			}
			break
		}
	}
	return out, "", nil
}

// Update implements JobStore.
func (m *MemStore) Update(_ context.Context, id string, fn func(*Job) error) error {
	m.mu.Lock()
	cur, ok := m.jobs[id]
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
		now, ok := m.jobs[id]
		if ok && now.Version == cur.Version {
			m.jobs[id] = next.clone()
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

// Pending implements JobStore.
func (m *MemStore) Pending(_ context.Context) ([]Job, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.DeleteFunc(m.sorted(false), Job.Terminal), nil
}
