package identity

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/serverless-cdp/cdp/internal/store"
)

// DynamoDB's limits that the in-memory store enforces like the table does.
const (
	memMaxItemBytes = 400 << 10 // one item
	memMaxTxBytes   = 4 << 20   // one transaction
	memMaxPKBytes   = 2048      // a partition key value
	memMaxSKBytes   = 1024      // a sort key value
)

// MemStore is the in-memory implementation of GraphStore, AttemptCounter and the Profile
// API's read model, for tests that run without emulators. It keeps what the DynamoDB adapter
// keeps, with the semantics the processor relies on: a commit is all or nothing, conditioned
// on the profile versions read and on index entries and events not existing (ErrConflict
// otherwise); dedupe markers per source and the legacy markers keyed by messageId alone;
// refusals (ErrRefused) of what DynamoDB refuses, sized by the adapter's own item encoding
// (an item over 400 KB, a key over its limit, a transaction over 100 items or 4 MB, two
// writes to one item in a transaction); timeline TTLs (expired events are not listed, though
// their markers still count until deleted: MemStore never deletes them). Reads are always
// consistent. It is safe for concurrent use.
type MemStore struct {
	mu       sync.Mutex
	now      func() time.Time
	profiles map[string]memProfile
	index    map[Identifier]string
	events   map[MessageRef]memEvent
	legacy   map[string]memEvent // messageId → marker written before dedupe was per source
	logs     map[string]map[string]LogEntry
	attempts map[MessageRef]memAttempt
}

var (
	_ GraphStore     = (*MemStore)(nil)
	_ AttemptCounter = (*MemStore)(nil)
)

type memProfile struct {
	data    []byte // the JSON document, so that readers get copies
	version int64
}

type memEvent struct {
	profile, source string
	msg             []byte // the JSON message
	key             string // timeline sort key
	expires         time.Time
	seq             int64
}

type memAttempt struct {
	n       int
	expires time.Time
}

// NewMemStore returns an empty in-memory store; now is its clock (nil: time.Now).
func NewMemStore(now func() time.Time) *MemStore {
	if now == nil {
		now = time.Now
	}
	return &MemStore{
		now: now, profiles: map[string]memProfile{}, index: map[Identifier]string{},
		events: map[MessageRef]memEvent{}, legacy: map[string]memEvent{},
		logs: map[string]map[string]LogEntry{}, attempts: map[MessageRef]memAttempt{},
	}
}

// Markers returns the dedupe markers of the messages already processed.
func (m *MemStore) Markers(_ context.Context, refs []MessageRef, _, legacy bool) (map[MessageRef]Marker, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[MessageRef]Marker{}
	byID := map[string][]MessageRef{}
	for _, r := range refs {
		if legacy && len(prefixMsgV1+r.ID) > memMaxPKBytes {
			return nil, refusedKey()
		}
		if e, ok := m.events[r]; ok {
			out[r] = newMarker(e.profile, e.msg, e.seq)
		}
		byID[r.ID] = append(byID[r.ID], r)
	}
	if !legacy {
		return out, nil
	}
	for id, rs := range byID {
		if e, ok := m.legacy[id]; ok {
			applyLegacyMarker(out, rs, e.source, newMarker(e.profile, e.msg, e.seq))
		}
	}
	return out, nil
}

// Index returns the profile id each identifier's index entry names.
func (m *MemStore) Index(_ context.Context, ids []Identifier, _ bool) (map[Identifier]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[Identifier]string{}
	for _, id := range ids {
		if len(prefixID+id.String()) > memMaxPKBytes {
			return nil, refusedKey()
		}
		if pid, ok := m.index[id]; ok {
			out[id] = pid
		}
	}
	return out, nil
}

// Profiles returns the stored profiles with these ids.
func (m *MemStore) Profiles(_ context.Context, ids []string, _ bool) (map[string]*Profile, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]*Profile{}
	for _, id := range ids {
		if len(prefixProfile+id) > memMaxPKBytes {
			return nil, refusedKey()
		}
		sp, ok := m.profiles[id]
		if !ok {
			continue
		}
		var p Profile
		if err := json.Unmarshal(sp.data, &p); err != nil {
			return nil, fmt.Errorf("profile %s: decode profile: %w", id, err)
		}
		p.ID, p.Version = id, sp.version
		out[id] = &p
	}
	return out, nil
}

// refusedKey is DynamoDB's answer to a read of a key longer than it can hold.
func refusedKey() error {
	return fmt.Errorf("%w: ValidationException: key too long", ErrRefused)
}

// Commit writes a component atomically, or nothing.
func (m *MemStore) Commit(_ context.Context, c *Commit) error {
	if err := m.refuses(c); err != nil {
		return err
	}
	docs := make([][]byte, len(c.Profiles))
	for i, p := range c.Profiles {
		b, err := json.Marshal(p)
		if err != nil {
			return fmt.Errorf("encode profile: %w", err)
		}
		docs[i] = b
	}
	evs := make([]memEvent, len(c.Events))
	for i, e := range c.Events {
		b, err := json.Marshal(e.Message)
		if err != nil {
			return fmt.Errorf("encode event: %w", err)
		}
		evs[i] = memEvent{profile: e.ProfileID, source: e.SourceID, msg: b, key: eventSortKey(e), expires: e.Expires, seq: e.Seq}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.conflicts(c); err != nil {
		return err
	}
	for i, p := range c.Profiles {
		m.profiles[p.ID] = memProfile{data: docs[i], version: p.Version + 1}
	}
	for id, pid := range c.IDs {
		m.index[id] = pid
	}
	for i, e := range c.Events {
		m.events[MessageRef{Source: e.SourceID, ID: e.Message.MessageID}] = evs[i]
	}
	for _, l := range c.Logs {
		if m.logs[l.ProfileID] == nil {
			m.logs[l.ProfileID] = map[string]LogEntry{}
		}
		m.logs[l.ProfileID][logSortKey(l)] = l
	}
	return nil
}

// Append writes a commit of one stored profile and events as single writes: the profile
// (conditioned on its version), then, in a separate step (other writers may come in between),
// each event that is not stored yet; a stored one is a Dup.
func (m *MemStore) Append(_ context.Context, c *Commit) ([]Appended, error) {
	if !appendable(c) {
		return nil, errNotAppendable
	}
	if err := m.refusesItems(c); err != nil {
		return nil, err
	}
	p := c.Profiles[0]
	doc, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode profile: %w", err)
	}
	evs := make([]memEvent, len(c.Events))
	for i, e := range c.Events {
		b, err := json.Marshal(e.Message)
		if err != nil {
			return nil, fmt.Errorf("encode event: %w", err)
		}
		evs[i] = memEvent{profile: e.ProfileID, source: e.SourceID, msg: b, key: eventSortKey(e), expires: e.Expires, seq: e.Seq}
	}
	m.mu.Lock()
	if sp, ok := m.profiles[p.ID]; !ok || sp.version != p.Version {
		m.mu.Unlock()
		return nil, fmt.Errorf("%w: profile %s is not at version %d", ErrConflict, p.ID, p.Version)
	}
	m.profiles[p.ID] = memProfile{data: doc, version: p.Version + 1}
	// Separate writes: another writer may come between the profile and the events.
	m.mu.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Appended, len(c.Events))
	for i, e := range c.Events {
		ref := refOfEvent(e)
		if old, exists := m.events[ref]; exists {
			mk := newMarker(old.profile, old.msg, old.seq)
			out[i].Dup = &mk
			continue
		}
		m.events[ref] = evs[i]
	}
	return out, nil
}

// refusesItems returns ErrRefused if DynamoDB would refuse one of a commit's items on its own
// (too large, a key too long).
func (m *MemStore) refusesItems(c *Commit) error {
	return forEachCommitItem(c, m.now(), func(it attrs, _ int64, _ bool) error {
		size := store.ItemSize(it)
		pk, sk := store.GetS(it, store.PK), store.GetS(it, store.SK)
		switch {
		case size > memMaxItemBytes:
			return fmt.Errorf("%w: ValidationException: Item size has exceeded the maximum allowed size (%d bytes)", ErrRefused, size)
		case len(pk) > memMaxPKBytes || len(sk) > memMaxSKBytes:
			return fmt.Errorf("%w: ValidationException: key too long", ErrRefused)
		}
		return nil
	})
}

// conflicts checks a commit's conditions against what is stored (m.mu held).
func (m *MemStore) conflicts(c *Commit) error {
	for _, p := range c.Profiles {
		sp, exists := m.profiles[p.ID]
		if (p.Version == 0 && exists) || (p.Version > 0 && (!exists || sp.version != p.Version)) {
			return fmt.Errorf("%w: profile %s is not at version %d", ErrConflict, p.ID, p.Version)
		}
	}
	for id := range c.IDs {
		if _, exists := m.index[id]; exists {
			return fmt.Errorf("%w: identifier %s is indexed already", ErrConflict, hashID(id.String()))
		}
	}
	for _, e := range c.Events {
		if _, exists := m.events[MessageRef{Source: e.SourceID, ID: e.Message.MessageID}]; exists {
			return fmt.Errorf("%w: message %s is stored already", ErrConflict, hashID(e.Message.MessageID))
		}
	}
	return nil
}

// refuses returns ErrRefused if DynamoDB would refuse the commit's transaction for what it
// holds, measured on the adapter's encoding of its items.
func (m *MemStore) refuses(c *Commit) error {
	n, total := 0, 0
	keys := map[string]bool{}
	err := forEachCommitItem(c, m.now(), func(it attrs, _ int64, _ bool) error {
		n++
		size := store.ItemSize(it)
		total += size
		pk, sk := store.GetS(it, store.PK), store.GetS(it, store.SK)
		switch {
		case size > memMaxItemBytes:
			return fmt.Errorf("%w: ValidationException: Item size has exceeded the maximum allowed size (%d bytes)", ErrRefused, size)
		case len(pk) > memMaxPKBytes || len(sk) > memMaxSKBytes:
			return fmt.Errorf("%w: ValidationException: key too long", ErrRefused)
		case keys[pk+"\x00"+sk]:
			return fmt.Errorf("%w: ValidationException: Transaction request cannot include multiple operations on one item", ErrRefused)
		}
		keys[pk+"\x00"+sk] = true
		return nil
	})
	switch {
	case err != nil:
		return err
	case n > maxTxItems:
		return fmt.Errorf("%w: ValidationException: %d items in one transaction (at most %d)", ErrRefused, n, maxTxItems)
	case total > memMaxTxBytes:
		return fmt.Errorf("%w: ValidationException: transaction of %d bytes (at most %d)", ErrRefused, total, memMaxTxBytes)
	}
	return nil
}

// CountAttempt increments and returns the failure count of a message (kept a week).
func (m *MemStore) CountAttempt(_ context.Context, sourceID, messageID string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := MessageRef{Source: sourceID, ID: messageID}
	a := m.attempts[r]
	a.n++
	a.expires = m.now().Add(attemptTTL)
	m.attempts[r] = a
	return a.n, nil
}

// Attempts returns how many attempts of a message have failed so far.
func (m *MemStore) Attempts(_ context.Context, sourceID, messageID string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.attempts[MessageRef{Source: sourceID, ID: messageID}].n, nil
}

// Profile returns the live profile with this id, following merge pointers; nil if unknown.
func (m *MemStore) Profile(ctx context.Context, id string) (*Profile, error) {
	return readProfile(ctx, m, id)
}

// Lookup returns the live profile holding an identifier; nil if none does.
func (m *MemStore) Lookup(ctx context.Context, id Identifier) (*Profile, error) {
	return lookup(ctx, m, id)
}

// Events returns a page of a profile's timeline (and of the profiles merged into it), newest
// first, leaving out expired events.
func (m *MemStore) Events(_ context.Context, p *Profile, page Page) ([]StoredEvent, string, error) {
	limit, before, err := pageBounds(page, prefixEvt)
	if err != nil {
		return nil, "", fmt.Errorf("events: %w", err)
	}
	parts := partOf(p)
	now := m.now().Unix()
	m.mu.Lock()
	defer m.mu.Unlock()
	var all []sorted[StoredEvent]
	for _, e := range m.events {
		if !parts[e.profile] || (before != "" && e.key >= before) || (e.expires.Unix() != 0 && e.expires.Unix() < now) {
			continue
		}
		se := StoredEvent{ProfileID: e.profile, SourceID: e.source, Expires: time.Unix(e.expires.Unix(), 0).UTC(), Seq: e.seq}
		if err := json.Unmarshal(e.msg, &se.Message); err != nil {
			return nil, "", fmt.Errorf("events: decode event: %w", err)
		}
		all = append(all, sorted[StoredEvent]{key: e.key, val: se})
	}
	out, next := newestPage(all, limit)
	return out, next, nil
}

// MergeLog returns a page of the merge log of a profile and the profiles merged into it,
// newest first.
func (m *MemStore) MergeLog(_ context.Context, p *Profile, page Page) ([]LogEntry, string, error) {
	limit, before, err := pageBounds(page, prefixLog)
	if err != nil {
		return nil, "", fmt.Errorf("merge log: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var all []sorted[LogEntry]
	for id := range partOf(p) {
		for k, l := range m.logs[id] {
			if before == "" || k < before {
				all = append(all, sorted[LogEntry]{key: k, val: cloneLog(l)})
			}
		}
	}
	out, next := newestPage(all, limit)
	return out, next, nil
}

// partOf is the set of profiles whose timelines and logs make up p's: p and those merged in.
func partOf(p *Profile) map[string]bool {
	parts := map[string]bool{p.ID: true}
	for _, id := range p.MergedFrom {
		parts[id] = true
	}
	return parts
}

func cloneLog(l LogEntry) LogEntry {
	b, _ := json.Marshal(l)
	var c LogEntry
	_ = json.Unmarshal(b, &c)
	return c
}
