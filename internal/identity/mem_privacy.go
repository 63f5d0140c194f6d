package identity

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

var _ PersonStore = (*MemStore)(nil)

// ProfileEvents returns every event committed to the profile (per-source and legacy markers,
// expired ones included: MemStore never deletes them), each with the key DynamoDB gives it.
func (m *MemStore) ProfileEvents(_ context.Context, profile string) ([]KeyedEvent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []KeyedEvent
	add := func(key ItemKey, e memEvent) error {
		se := StoredEvent{ProfileID: e.profile, SourceID: e.source, Expires: time.Unix(e.expires.Unix(), 0).UTC(), Seq: e.seq}
		if len(e.msg) > 0 {
			if err := json.Unmarshal(e.msg, &se.Message); err != nil {
				return fmt.Errorf("profile events: decode event: %w", err)
			}
		}
		out = append(out, KeyedEvent{Key: key, Event: se})
		return nil
	}
	for r, e := range m.events {
		if e.profile == profile {
			if err := add(ItemKey{PK: prefixMsg + r.hash(), SK: skMsg}, e); err != nil {
				return nil, err
			}
		}
	}
	for id, e := range m.legacy {
		if e.profile == profile {
			if err := add(ItemKey{PK: prefixMsgV1 + id, SK: skMsg}, e); err != nil {
				return nil, err
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key.PK < out[j].Key.PK })
	return out, nil
}

// ProfileLog returns every merge-log line of the profile, oldest first.
func (m *MemStore) ProfileLog(_ context.Context, profile string) ([]KeyedLog, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]KeyedLog, 0, len(m.logs[profile]))
	for sk, l := range m.logs[profile] {
		out = append(out, KeyedLog{Key: ItemKey{PK: prefixProfile + profile, SK: sk}, Entry: cloneLog(l)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key.SK < out[j].Key.SK })
	return out, nil
}

// DeleteItems deletes items by the keys DynamoDB gives them; unknown keys are ignored.
func (m *MemStore) DeleteItems(_ context.Context, keys []ItemKey) error {
	want := map[ItemKey]bool{}
	for _, k := range keys {
		want[k] = true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for id := range m.index {
		if want[indexItemKey(id)] {
			delete(m.index, id)
		}
	}
	for r := range m.events {
		if want[ItemKey{PK: prefixMsg + r.hash(), SK: skMsg}] {
			delete(m.events, r)
		}
	}
	for id := range m.legacy {
		if want[ItemKey{PK: prefixMsgV1 + id, SK: skMsg}] {
			delete(m.legacy, id)
		}
	}
	for k := range want {
		pid, ok := strings.CutPrefix(k.PK, prefixProfile)
		switch {
		case ok && k.SK == skProfile:
			delete(m.profiles, pid)
		case ok && strings.HasPrefix(k.SK, prefixLog):
			delete(m.logs[pid], k.SK)
		}
	}
	return nil
}

// DeleteProfile deletes a profile on the condition that it is at version (nil if absent).
func (m *MemStore) DeleteProfile(_ context.Context, id string, version int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	sp, ok := m.profiles[id]
	switch {
	case !ok:
		return nil
	case sp.version != version:
		return fmt.Errorf("%w: profile %s is not at version %d", ErrConflict, id, version)
	}
	delete(m.profiles, id)
	return nil
}
