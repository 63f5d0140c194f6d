package activation

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// memStore is the in-memory Store, for tests without an emulator: the DynamoDB adapter's
// semantics (conditional create, versioned writes, atomic transitions between the log, the
// queue and the dead letters, newest-first log, paging, the key and item limits it refuses)
// under one mutex.
type memStore struct {
	mu      sync.Mutex
	dels    map[memKey]*memDelivery
	queue   map[string]QueueEntry // by Ref
	dead    map[memKey]DeadLetter
	stats   map[string]*Stats
	maxItem int // the largest delivery (record id and body) accepted: DynamoDB's 400 KB
}

type memKey struct{ dest, record string }

type memDelivery struct {
	d      Delivery
	logKey string // set once an outcome was recorded: the delivery log lists it from then on
}

// NewMemStore returns an empty in-memory Store.
func NewMemStore() Store {
	return &memStore{dels: map[memKey]*memDelivery{}, queue: map[string]QueueEntry{}, dead: map[memKey]DeadLetter{},
		stats: map[string]*Stats{}, maxItem: 400 << 10}
}

var _ Store = (*memStore)(nil)

// memMaxKey is DynamoDB's limit on a sort key; the delivery's sort key is "REC#" + record id.
const memMaxKey = 1024 - len(delivSKPfx)

func (m *memStore) Create(_ context.Context, d Delivery) (bool, error) {
	if len(d.RecordID) > memMaxKey || len(d.RecordID)+len(d.Body) > m.maxItem {
		return false, fmt.Errorf("claim delivery %s: %w: key or item too large", d.DestinationID, ErrRefused)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	k := memKey{d.DestinationID, d.RecordID}
	if _, ok := m.dels[k]; ok {
		return false, nil
	}
	d.Body, d.QueueRef, d.NextAttemptAt = nil, "", nil
	md := &memDelivery{d: d}
	if d.Status == StatusFilteredConsent {
		md.logKey = ts(d.UpdatedAt) + "#" + d.RecordID // final: in the log at once
	}
	m.dels[k] = md
	return true, nil
}

func (m *memStore) Delivery(_ context.Context, destID, recordID string) (Delivery, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	md, ok := m.dels[memKey{destID, recordID}]
	if !ok {
		return Delivery{}, false, nil
	}
	return copyDelivery(md.d), true, nil
}

func copyDelivery(d Delivery) Delivery {
	d.Body = slices.Clone(d.Body)
	if d.Status != StatusRetrying {
		d.NextAttemptAt = nil // shown only while queued, as the DynamoDB adapter does
	}
	if d.NextAttemptAt != nil {
		t := *d.NextAttemptAt
		d.NextAttemptAt = &t
	}
	return d
}

func (m *memStore) Lease(_ context.Context, destID, recordID string, version int64, until, now time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	md, ok := m.dels[memKey{destID, recordID}]
	if !ok || md.d.Version != version {
		return false, nil
	}
	md.d.Status, md.d.LeaseUntil, md.d.Version, md.d.UpdatedAt = StatusInflight, until, version+1, now.UTC()
	return true, nil
}

func (m *memStore) Finish(_ context.Context, t Transition) error {
	if len(t.RecordID)+len(t.Body) > m.maxItem {
		return fmt.Errorf("record delivery %s/%s: %w: item too large", t.DestID, t.RecordID, ErrRefused)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	md, ok := m.dels[memKey{t.DestID, t.RecordID}]
	if !ok {
		return fmt.Errorf("delivery %s/%s: %w", t.DestID, t.RecordID, ErrGone)
	}
	if md.d.Version != t.Version {
		return fmt.Errorf("delivery %s/%s: %w", t.DestID, t.RecordID, ErrLeaseLost)
	}
	if t.FromQueue != "" {
		delete(m.queue, t.FromQueue)
	}
	d := &md.d
	d.Status, d.Attempts, d.Version, d.UpdatedAt = t.Status, t.Attempts, t.Version+1, t.At.UTC()
	d.LatencyMs, d.LastStatus, d.LastError = t.Latency.Milliseconds(), t.LastStatus, t.LastError
	d.LeaseUntil = time.UnixMilli(0)
	md.logKey = ts(t.At) + "#" + t.RecordID
	switch t.Status {
	case StatusDelivered:
		d.Body, d.QueueRef, d.NextAttemptAt = nil, "", nil
	case StatusRetrying:
		e := QueueEntry{DestID: t.DestID, RecordID: t.RecordID, Due: time.UnixMilli(t.NextAt.UnixMilli()),
			Ref: queueSK(t.NextAt, t.DestID, t.RecordID)}
		m.queue[e.Ref] = e
		next := e.Due.UTC()
		d.Body, d.QueueRef, d.NextAttemptAt, d.Retries = slices.Clone(t.Body), e.Ref, &next, t.Retries
	case StatusDead:
		d.Body, d.QueueRef, d.NextAttemptAt = slices.Clone(t.Body), "", nil
		m.dead[memKey{t.DestID, t.RecordID}] = DeadLetter{DestinationID: t.DestID, RecordID: t.RecordID, WebhookID: t.WebhookID,
			Kind: t.Kind, Attempts: t.Attempts, LastStatus: t.LastStatus, LastError: t.LastError, DeadAt: t.At.UTC(),
			Payload: slices.Clone(t.Body)}
	}
	return nil
}

func (m *memStore) Due(_ context.Context, now time.Time, limit int) ([]QueueEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []QueueEntry
	for _, e := range m.queue {
		if !e.Due.After(now) {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Ref < out[j].Ref }) // due time first (fixed-width)
	return out[:min(len(out), limit)], nil
}

func (m *memStore) Dequeue(_ context.Context, e QueueEntry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.queue, e.Ref)
	return nil
}

func (m *memStore) Redrive(_ context.Context, d Delivery, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := memKey{d.DestinationID, d.RecordID}
	md, ok := m.dels[k]
	if _, dead := m.dead[k]; !ok || !dead || md.d.Version != d.Version || md.d.Status != StatusDead {
		return fmt.Errorf("%w: %s/%s changed concurrently", ErrNotDead, d.DestinationID, d.RecordID)
	}
	delete(m.dead, k)
	e := QueueEntry{DestID: d.DestinationID, RecordID: d.RecordID, Due: time.UnixMilli(now.UnixMilli()), Ref: queueSK(now, d.DestinationID, d.RecordID)}
	m.queue[e.Ref] = e
	next := e.Due.UTC()
	md.d.Status, md.d.Retries, md.d.Version, md.d.UpdatedAt = StatusRetrying, 0, d.Version+1, now.UTC()
	md.d.QueueRef, md.d.NextAttemptAt = e.Ref, &next
	return nil
}

func (m *memStore) Count(_ context.Context, destID, counter string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.stats[destID]
	if st == nil {
		st = &Stats{}
		m.stats[destID] = st
	}
	switch counter {
	case "delivered":
		st.Delivered++
	case "retried":
		st.Retried++
	case "deadLettered":
		st.DeadLettered++
	case "redriven":
		st.Redriven++
	case "filteredConsent":
		st.FilteredConsent++
	case "droppedErased":
		st.DroppedErased++
	default:
		return fmt.Errorf("count %s for %s: unknown counter", counter, destID)
	}
	return nil
}

func (m *memStore) Stats(_ context.Context, destID string) (Stats, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if st := m.stats[destID]; st != nil {
		return *st, nil
	}
	return Stats{}, nil
}

// memPage returns the items after the token's key (keys ascending), at most limit, and the
// token of the next page ("" at the end).
func memPage[T any](keys []string, byKey map[string]T, limit int, next string) ([]T, string, error) {
	after := ""
	if next != "" {
		b, err := base64.RawURLEncoding.DecodeString(next)
		if err != nil || !strings.HasPrefix(string(b), "mem:") {
			return nil, "", ErrBadPage
		}
		after = strings.TrimPrefix(string(b), "mem:")
	}
	sort.Strings(keys)
	i := sort.SearchStrings(keys, after)
	if after != "" && i < len(keys) && keys[i] == after {
		i++
	}
	var out []T
	for ; i < len(keys) && len(out) < limit; i++ {
		out = append(out, byKey[keys[i]])
	}
	if i >= len(keys) {
		return out, "", nil
	}
	return out, base64.RawURLEncoding.EncodeToString([]byte("mem:" + keys[i-1])), nil
}

func (m *memStore) Deliveries(_ context.Context, destID string, limit int, next string) ([]Delivery, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	byKey := map[string]Delivery{}
	var keys []string
	for k, md := range m.dels {
		if k.dest == destID && md.logKey != "" {
			// Newest first: invert the key order by complementing each byte.
			key := invert(md.logKey)
			byKey[key] = copyDelivery(md.d)
			keys = append(keys, key)
		}
	}
	return memPage(keys, byKey, limit, next)
}

func invert(s string) string {
	b := []byte(s)
	for i := range b {
		b[i] = 0xff - b[i]
	}
	return string(b)
}

func (m *memStore) DeadLetters(_ context.Context, destID string, limit int, next string) ([]DeadLetter, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	byKey := map[string]DeadLetter{}
	var keys []string
	for k, dl := range m.dead {
		if k.dest == destID {
			byKey[k.record], keys = dl, append(keys, k.record)
		}
	}
	return memPage(keys, byKey, limit, next)
}

func (m *memStore) DeadLetter(_ context.Context, destID, recordID string) (DeadLetter, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	dl, ok := m.dead[memKey{destID, recordID}]
	if !ok {
		return DeadLetter{}, ErrNotFound
	}
	return dl, nil
}

func (m *memStore) ProfileDeliveries(_ context.Context, destID, prefix string) ([]Delivery, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Delivery
	for k, md := range m.dels {
		if k.dest == destID && strings.HasPrefix(k.record, prefix) {
			out = append(out, copyDelivery(md.d))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].RecordID < out[j].RecordID })
	return out, nil
}

func (m *memStore) EraseDelivery(_ context.Context, d Delivery) (Erased, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var e Erased
	k := memKey{d.DestinationID, d.RecordID}
	if d.QueueRef != "" {
		_, e.QueueEntry = m.queue[d.QueueRef]
		delete(m.queue, d.QueueRef)
	}
	_, e.DeadLetter = m.dead[k]
	delete(m.dead, k)
	_, e.Delivery = m.dels[k]
	delete(m.dels, k)
	return e, nil
}
