package monitor

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"
)

// MemStore is the in-memory Store (tests, and the conformance suite's reference).
type MemStore struct {
	Now        func() time.Time // the clock rejection samples expire by (default time.Now)
	mu         sync.Mutex
	counts     map[countKey]*Count
	lags       map[countKey]*Lag
	rejections []Rejection
}

// NewMemStore returns an empty store.
func NewMemStore() *MemStore {
	return &MemStore{Now: time.Now, counts: map[countKey]*Count{}, lags: map[countKey]*Lag{}}
}

// Write adds the batch.
func (m *MemStore) Write(_ context.Context, b Batch) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range b.Counts {
		k := countKey{c.Source, minute(c.Minute)}
		s := m.counts[k]
		if s == nil {
			s = &Count{Source: c.Source, Minute: k.minute}
			m.counts[k] = s
		}
		s.Accepted += c.Accepted
		for code, n := range c.Rejected {
			if s.Rejected == nil {
				s.Rejected = map[string]int64{}
			}
			s.Rejected[code] += n
		}
	}
	for _, l := range b.Lags {
		k := countKey{l.Stage, minute(l.Minute)}
		s := m.lags[k]
		if s == nil {
			s = &Lag{Stage: l.Stage, Minute: k.minute}
			m.lags[k] = s
		}
		s.Records += l.Records
		s.MaxAge = max(s.MaxAge, l.MaxAge.Truncate(time.Millisecond))
	}
	m.rejections = append(m.rejections, b.Rejections...)
	return nil
}

// Counts returns the counts from since's minute on, oldest first (then by source).
func (m *MemStore) Counts(_ context.Context, since time.Time) ([]Count, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Count
	for _, c := range m.counts {
		if !c.Minute.Before(minute(since)) {
			cc := *c
			cc.Rejected = maps.Clone(c.Rejected)
			out = append(out, cc)
		}
	}
	slices.SortFunc(out, func(a, b Count) int {
		if d := a.Minute.Compare(b.Minute); d != 0 {
			return d
		}
		return cmpString(a.Source, b.Source)
	})
	return out, nil
}

// Lags returns the lags from since's minute on, oldest first (then by stage).
func (m *MemStore) Lags(_ context.Context, since time.Time) ([]Lag, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Lag
	for _, l := range m.lags {
		if !l.Minute.Before(minute(since)) {
			out = append(out, *l)
		}
	}
	slices.SortFunc(out, func(a, b Lag) int {
		if d := a.Minute.Compare(b.Minute); d != 0 {
			return d
		}
		return cmpString(a.Stage, b.Stage)
	})
	return out, nil
}

// Rejections returns the latest samples of the last RejectionTTL, newest first.
func (m *MemStore) Rejections(_ context.Context, limit int) ([]Rejection, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Rejection
	for _, r := range m.rejections {
		if m.Now().Sub(r.At) < RejectionTTL {
			out = append(out, r)
		}
	}
	slices.SortStableFunc(out, func(a, b Rejection) int { return b.At.Compare(a.At) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
