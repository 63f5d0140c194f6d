package segment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/serverless-cdp/cdp/internal/activations"
	"github.com/serverless-cdp/cdp/internal/deadletter"
	"github.com/serverless-cdp/cdp/internal/stream"
)

// MemStore is the in-memory implementation of the segments stage's ports (tests, local tools).
// It keeps what the DynamoDB adapter keeps, encoded the same way (so a state over the size limit
// is refused alike), under one mutex: every call is atomic.
type MemStore struct {
	mu      sync.Mutex
	states  map[string]memBlob              // by profile id, with the outbox
	prev    map[string]memBlob              // the version before, served by stale reads
	stale   bool                            // eventually consistent loads return prev (tests)
	defs    map[string]memBlob              // by sort key (CT#, AUD#, JOB#<id>)
	members map[string]map[string]time.Time // by audience id, then profile id
	sched   map[string]string               // profile id → schedule key (schedKey)
	reg     map[string]bool                 // registered profile ids
	dropped int64                           // change records dropped for erased profiles
	chunks  map[string]memChunk             // training features, by partition and sort key
}

// memBlob is a stored encoding with its version (a job's: the definition version) and, for a
// state, its encoded outbox.
type memBlob struct {
	data []byte
	ver  int64
	out  []byte
}

var _ Stores = (*MemStore)(nil)

// NewMemStore returns an empty in-memory store.
func NewMemStore() *MemStore {
	return &MemStore{states: map[string]memBlob{}, prev: map[string]memBlob{}, defs: map[string]memBlob{},
		members: map[string]map[string]time.Time{}, sched: map[string]string{}, reg: map[string]bool{}}
}

// LoadDefinitions reads every definition and job, in the adapter's (sort key) order.
func (m *MemStore) LoadDefinitions(_ context.Context) (*Definitions, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := &Definitions{Jobs: map[string]*Job{}}
	for _, sk := range sortedKeys(m.defs) {
		if err := d.add(sk, m.defs[sk].data, m.defs[sk].data); err != nil { // a model's gzip is its data
			return nil, fmt.Errorf("load definitions: %s: %w", sk, err)
		}
	}
	return d, nil
}

// PutTrait stores a computed trait (see DefinitionStore).
func (m *MemStore) PutTrait(_ context.Context, t *ComputedTrait, j *Job) error {
	return m.putDef(skTraitPfx+t.ID, t, t.Version, j)
}

// PutAudience stores an audience (see DefinitionStore).
func (m *MemStore) PutAudience(_ context.Context, a *Audience, j *Job) error {
	return m.putDef(skAudPfx+a.ID, a, a.Version, j)
}

func (m *MemStore) putDef(sk string, def any, version int64, j *Job) error {
	data, err := json.Marshal(def)
	if err != nil {
		return fmt.Errorf("encode definition: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.defs[sk].ver != version-1 {
		return ErrConflict
	}
	m.defs[sk] = memBlob{data: data, ver: version}
	if j != nil {
		jd, _ := json.Marshal(j)
		m.defs[skJobPfx+j.DefinitionID] = memBlob{data: jd, ver: j.Version}
	}
	return nil
}

// PutJob stores a job's progress (see DefinitionStore).
func (m *MemStore) PutJob(_ context.Context, j *Job) error {
	jd, _ := json.Marshal(j)
	m.mu.Lock()
	defer m.mu.Unlock()
	old, ok := m.defs[skJobPfx+j.DefinitionID]
	if !ok || old.ver != j.Version {
		return ErrConflict
	}
	m.defs[skJobPfx+j.DefinitionID] = memBlob{data: jd, ver: j.Version}
	return nil
}

// DeleteTrait removes a computed trait and its job.
func (m *MemStore) DeleteTrait(_ context.Context, id string) error {
	return m.deleteDef(skTraitPfx+id, id)
}

// DeleteAudience removes an audience and its job.
func (m *MemStore) DeleteAudience(_ context.Context, id string) error {
	return m.deleteDef(skAudPfx+id, id)
}

func (m *MemStore) deleteDef(sk, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.defs[sk]; !ok {
		return ErrNotFound
	}
	delete(m.defs, sk)
	delete(m.defs, skJobPfx+id)
	delete(m.defs, skModelPfx+id)
	delete(m.defs, skTrainPfx+id)
	return nil
}

// StaleReads makes eventually consistent loads return the version before the stored one (none
// after the first commit), as DynamoDB may right after a write: tests use it to check that
// callers do not lose updates or decisions to stale reads.
func (m *MemStore) StaleReads(on bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stale = on
}

// Load reads a profile's state and outbox (decoded: the caller owns them).
func (m *MemStore) Load(_ context.Context, pid string, consistent bool) (*Snapshot, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.states[pid]
	if m.stale && !consistent {
		b, ok = m.prev[pid]
	}
	var st *State
	outbox := map[int64][]activations.Record{}
	if ok {
		var err error
		if st, err = decodeState(b.data, b.ver); err != nil {
			return nil, fmt.Errorf("load state %s: %w", pid, err)
		}
		if err := decodeOutbox(outbox, b.ver, b.out); err != nil {
			return nil, fmt.Errorf("load state %s: %w", pid, err)
		}
	}
	l := NewSnapshot(st, outbox)
	if ok {
		l.data = b.data
	}
	return l, nil
}

// Commit stores the states (see StateStore): all or nothing.
func (m *MemStore) Commit(_ context.Context, ws []Write, limit int) error {
	enc := make([][2][]byte, len(ws))
	for i, w := range ws {
		s, o, err := encodeWrite(w, limit)
		if err != nil {
			return err
		}
		enc[i] = [2][]byte{s, o}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, w := range ws {
		if m.states[w.State.ProfileID].ver != w.State.Ver {
			return ErrConflict
		}
	}
	for i, w := range ws {
		pid := w.State.ProfileID
		if old, ok := m.states[pid]; ok {
			m.prev[pid] = old
		}
		m.states[pid] = memBlob{data: enc[i][0], ver: w.State.Ver + 1, out: enc[i][1]}
		ws[i].stored = enc[i][0]
		m.applyDerived(pid, deriveWrite(w))
	}
	return nil
}

func (m *MemStore) applyDerived(pid string, d derived) {
	if d.register {
		m.reg[pid] = true
	}
	if d.unregister {
		delete(m.reg, pid)
	}
	for id, at := range d.enter {
		if m.members[id] == nil {
			m.members[id] = map[string]time.Time{}
		}
		m.members[id][pid] = at
	}
	for _, id := range d.exit {
		delete(m.members[id], pid)
	}
	switch {
	case d.unschedule:
		delete(m.sched, pid)
	case !d.schedule.IsZero():
		m.sched[pid] = schedKey(pid, d.schedule)
	}
}

// Due lists due profiles of one schedule shard, earliest first.
func (m *MemStore) Due(_ context.Context, shard int, now time.Time, limit int) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	upper := dueBefore(now)
	var keys []string
	for pid, k := range m.sched {
		if shardOf(pid, schedShards) == shard && k < upper {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	ids := make([]string, 0, min(len(keys), limit))
	for _, k := range keys[:min(len(keys), limit)] {
		_, pid, _ := strings.Cut(k, "#")
		ids = append(ids, pid)
	}
	return ids, nil
}

// Unschedule removes a profile's schedule entry.
func (m *MemStore) Unschedule(_ context.Context, pid string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.sched, pid)
	return nil
}

// Profiles lists registered profile ids of one registry shard, a page at a time.
func (m *MemStore) Profiles(_ context.Context, shard int, limit int, cursor string) ([]string, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ids []string
	for pid := range m.reg {
		if shardOf(pid, regShards) == shard {
			ids = append(ids, pid)
		}
	}
	return memPage(ids, limit, cursor)
}

// Members lists an audience's current members, a page at a time.
func (m *MemStore) Members(_ context.Context, audienceID string, limit int, next string) ([]Member, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	sks := make([]string, 0, len(m.members[audienceID]))
	for pid := range m.members[audienceID] {
		sks = append(sks, skMemberPfx+pid)
	}
	page, next, err := memPage(sks, limit, next)
	if err != nil {
		return nil, "", err
	}
	out := make([]Member, 0, len(page))
	for _, sk := range page {
		pid := strings.TrimPrefix(sk, skMemberPfx)
		out = append(out, Member{ProfileID: pid, EnteredAt: m.members[audienceID][pid]})
	}
	return out, next, nil
}

// memPage is one page of sort keys after token (limit 0: all), with the next page's token.
func memPage(sks []string, limit int, token string) ([]string, string, error) {
	sort.Strings(sks)
	if token != "" {
		after, err := parseToken(token)
		if err != nil {
			return nil, "", err
		}
		i, _ := slices.BinarySearch(sks, after)
		for i < len(sks) && sks[i] <= after {
			i++
		}
		sks = sks[i:]
	}
	if limit <= 0 || len(sks) <= limit {
		return sks, "", nil
	}
	return sks[:limit], pageToken(sks[limit-1]), nil
}

// Size counts an audience's current members.
func (m *MemStore) Size(_ context.Context, audienceID string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.members[audienceID]), nil
}

// DeleteMember removes one member item.
func (m *MemStore) DeleteMember(_ context.Context, audienceID, pid string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.members[audienceID], pid)
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// MemPublisher is an in-memory activations stream: it keeps what is put, in order.
type MemPublisher struct {
	mu   sync.Mutex
	recs []stream.Record
}

// Put appends the records.
func (p *MemPublisher) Put(_ context.Context, recs []stream.Record) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range recs {
		p.recs = append(p.recs, stream.Record{PartitionKey: r.PartitionKey, Data: slices.Clone(r.Data)})
	}
	return nil
}

// Records returns what was put so far.
func (p *MemPublisher) Records() []stream.Record {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.recs)
}

// MemDeadLetters is an in-memory dead-letter store with deadletter.Store's semantics for Put
// and List (an entry per stage, kind and payload; a repeat increments Count).
type MemDeadLetters struct {
	mu      sync.Mutex
	entries map[string]deadletter.Entry // by stage + id
}

// Put stores an entry.
func (d *MemDeadLetters) Put(_ context.Context, e deadletter.Entry) (deadletter.Entry, error) {
	if e.Stage == "" || e.Kind == "" || e.Reason == "" {
		return e, errors.New("dead letter: stage, kind and reason are required")
	}
	if len(e.Payload) > deadletter.MaxPayload {
		return e, fmt.Errorf("dead letter: payload of %d bytes exceeds %d", len(e.Payload), deadletter.MaxPayload)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.entries == nil {
		d.entries = map[string]deadletter.Entry{}
	}
	e.ID = deadletter.EntryID(e.Stage, e.Kind, e.Payload)
	now := time.Now().UTC()
	old, ok := d.entries[e.Stage+"\x00"+e.ID]
	e.Count, e.CreatedAt, e.UpdatedAt = old.Count+1, now, now
	if ok {
		e.CreatedAt = old.CreatedAt
	}
	e.Payload = slices.Clone(e.Payload)
	d.entries[e.Stage+"\x00"+e.ID] = e
	return e, nil
}

// List returns a stage's entries by id (limit 0: all; next continues a listing).
func (d *MemDeadLetters) List(_ context.Context, stage string, limit int, next string) ([]deadletter.Entry, string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var ids []string
	for k, e := range d.entries {
		if e.Stage == stage {
			ids = append(ids, strings.TrimPrefix(k, stage+"\x00"))
		}
	}
	page, next, err := memPage(ids, limit, next)
	if err != nil {
		return nil, "", err
	}
	out := make([]deadletter.Entry, 0, len(page))
	for _, id := range page {
		out = append(out, d.entries[stage+"\x00"+id])
	}
	return out, next, nil
}

// ProfileData returns every item kept about a profile (see PersonalStore).
func (m *MemStore) ProfileData(ctx context.Context, pid string, audiences []string) ([]PersonalItem, error) {
	l, err := m.Load(ctx, pid, true)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []PersonalItem
	if l.State != nil && !l.State.Erased {
		out = append(out, PersonalItem{Kind: KindProfileState, Value: exportState(l)})
	}
	for _, a := range memberAudiences(l.State, audiences) {
		if at, ok := m.members[a][pid]; ok {
			out = append(out, PersonalItem{Kind: KindMemberships, Value: ExportedMembership{AudienceID: a, ProfileID: pid, EnteredAt: at}})
		}
	}
	if k, ok := m.sched[pid]; ok {
		next, _, _ := strings.Cut(k, "#")
		out = append(out, PersonalItem{Kind: KindSchedule, Value: ExportedSchedule{ProfileID: pid, Next: next}})
	}
	if m.reg[pid] {
		out = append(out, PersonalItem{Kind: KindRegistration, Value: ExportedRegistration{ProfileID: pid, Shard: regShard(pid)}})
	}
	return out, nil
}

// EraseProfile tombstones a profile's state and deletes the items derived from it (see
// PersonalStore); the tombstone's expiry is not modelled.
func (m *MemStore) EraseProfile(ctx context.Context, pid string, audiences []string, _ time.Time) (map[string]int, error) {
	l, err := m.Load(ctx, pid, true)
	if err != nil {
		return nil, err
	}
	data, err := encodeState(tombstone(pid, 0))
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n := map[string]int{}
	if b, ok := m.states[pid]; !ok || l.State == nil || !l.State.Erased {
		if ok {
			n[KindProfileState]++
			m.prev[pid] = b
		}
		m.states[pid] = memBlob{data: data, ver: b.ver + 1}
	}
	for _, a := range memberAudiences(l.State, audiences) {
		if _, ok := m.members[a][pid]; ok {
			delete(m.members[a], pid)
			n[KindMemberships]++
		}
	}
	if _, ok := m.sched[pid]; ok {
		delete(m.sched, pid)
		n[KindSchedule]++
	}
	if m.reg[pid] {
		delete(m.reg, pid)
		n[KindRegistration]++
	}
	return n, nil
}

// AddDropped counts change records dropped for an erased profile.
func (m *MemStore) AddDropped(_ context.Context, n int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.dropped += int64(n)
	return nil
}

// Dropped returns how many change records were dropped for erased profiles.
func (m *MemStore) Dropped(context.Context) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.dropped, nil
}
