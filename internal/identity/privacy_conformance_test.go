package identity

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"
)

// TestPersonStoreConformance runs the one conformance suite of PersonStore (the privacy
// Resolver's and Holder's port) against every backend: the in-memory store always, the
// DynamoDB adapter on DynamoDB Local with the integration build tag.
func TestPersonStoreConformance(t *testing.T) {
	cases := []struct {
		name string
		fn   func(t *testing.T, s PersonStore, d backendData)
	}{
		{"ProfileEventsListsEveryItemOfTheProfileOnly", confPersonEvents},
		{"ProfileLogListsTheProfilesLines", confPersonLog},
		{"DeleteItemsDeletesIndexEventsLogsInBatches", confPersonDelete},
		{"DeleteProfileConditionedOnVersion", confPersonDeleteProfile},
	}
	eachBackend(t, func(t *testing.T, b backend) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				s, d := b.open(t)
				c.fn(t, s.(PersonStore), d)
			})
		}
	})
}

// legacyEventPutter stores a timeline item as written before dedupe was per source (pk
// MSG#<messageId>, on the profile's timeline).
type legacyEventPutter interface {
	putLegacyEvent(t testing.TB, e StoredEvent)
}

func (d memData) putLegacyEvent(t testing.TB, e StoredEvent) {
	t.Helper()
	d.m.mu.Lock()
	defer d.m.mu.Unlock()
	b := []byte(fmt.Sprintf(`{"type":%q,"messageId":%q,"event":%q}`, e.Message.Type, e.Message.MessageID, e.Message.Event))
	d.m.legacy[e.Message.MessageID] = memEvent{profile: e.ProfileID, source: e.SourceID, msg: b, key: eventSortKey(e), expires: e.Expires}
}

// seedPerson commits profile pid holding ids, with n events (one of them past its retention)
// and a merge-log line per event.
func seedPerson(t *testing.T, s storeUnderTest, pid string, n int, ids ...Identifier) {
	t.Helper()
	p := confProfile(pid, ids...)
	idx := map[Identifier]string{}
	for _, id := range ids {
		idx[id] = pid
	}
	c := &Commit{Profiles: []*Profile{p}, IDs: idx}
	for i := range n {
		ev := confEvent(pid, "s1", fmt.Sprintf("%s-m%d", pid, i), i)
		if i == 0 {
			ev.Expires = confT.Add(-time.Hour) // past retention, not deleted yet
		}
		c.Events = append(c.Events, ev)
		c.Logs = append(c.Logs, LogEntry{At: confT.Add(time.Duration(i) * time.Second), MessageID: ev.Message.MessageID, ProfileID: pid,
			Actions: []Action{{Kind: ActionAttach, Identifiers: ids, Profiles: []string{pid}}}})
	}
	for len(c.Events) > 0 { // at most 100 items per transaction
		k := min(len(c.Events), 40)
		mustCommit(t, s, &Commit{Profiles: c.Profiles, IDs: c.IDs, Events: c.Events[:k], Logs: c.Logs[:k]})
		c.Profiles[0].Version++
		c.IDs, c.Events, c.Logs = nil, c.Events[k:], c.Logs[k:]
	}
}

// eventsOf polls ProfileEvents until it lists want items (the timeline index is eventually
// consistent) or the deadline passes, and returns the message ids it lists.
func eventsOf(t *testing.T, s PersonStore, pid string, want int) []string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		evs, err := s.ProfileEvents(context.Background(), pid)
		if err != nil {
			t.Fatalf("profile events: %v", err)
		}
		var ids []string
		for _, e := range evs {
			ids = append(ids, e.Event.Message.MessageID)
			if e.Event.ProfileID != pid || e.Key.PK == "" || e.Key.SK != skMsg {
				t.Fatalf("event item %+v", e)
			}
		}
		sort.Strings(ids)
		if len(ids) == want || time.Now().After(deadline) {
			return ids
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func confPersonEvents(t *testing.T, s PersonStore, d backendData) {
	su := s.(storeUnderTest)
	seedPerson(t, su, "use_a", 3, confU1)
	seedPerson(t, su, "use_b", 2, confA1)
	lp, ok := d.(legacyEventPutter)
	if !ok {
		t.Fatalf("backend %T cannot store a legacy event", d)
	}
	lp.putLegacyEvent(t, confEvent("use_a", "s1", "legacy-1", 9))
	got := eventsOf(t, s, "use_a", 4)
	if fmt.Sprint(got) != "[legacy-1 use_a-m0 use_a-m1 use_a-m2]" {
		t.Fatalf("events of use_a (expired and legacy included, use_b's not): %v", got)
	}
	if got := eventsOf(t, s, "use_none", 0); len(got) != 0 {
		t.Fatalf("events of an unknown profile: %v", got)
	}
}

func confPersonLog(t *testing.T, s PersonStore, _ backendData) {
	su := s.(storeUnderTest)
	seedPerson(t, su, "use_a", 3, confU1)
	seedPerson(t, su, "use_b", 1, confA1)
	logs, err := s.ProfileLog(context.Background(), "use_a")
	if err != nil || len(logs) != 3 {
		t.Fatalf("log of use_a: %+v %v", logs, err)
	}
	for i, l := range logs {
		if l.Key.PK != prefixProfile+"use_a" || l.Entry.MessageID != fmt.Sprintf("use_a-m%d", i) || l.Entry.Actions[0].Identifiers[0] != confU1 {
			t.Fatalf("log line %d: %+v", i, l)
		}
	}
}

func confPersonDelete(t *testing.T, s PersonStore, _ backendData) {
	ctx := context.Background()
	su := s.(storeUnderTest)
	seedPerson(t, su, "use_a", 60, confU1) // 60 events: more than one BatchWriteItem
	seedPerson(t, su, "use_b", 2, confA1)
	evs, err := s.ProfileEvents(ctx, "use_a")
	if err != nil || len(evs) != 60 {
		t.Fatalf("events: %d %v", len(evs), err)
	}
	logs, err := s.ProfileLog(ctx, "use_a")
	if err != nil {
		t.Fatal(err)
	}
	keys := []ItemKey{indexItemKey(confU1), indexItemKey(Identifier{Type: "email", Value: "nobody@example.com"})}
	for _, e := range evs {
		keys = append(keys, e.Key)
	}
	for _, l := range logs {
		keys = append(keys, l.Key)
	}
	if err := s.DeleteItems(ctx, keys); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if idx, err := s.Index(ctx, []Identifier{confU1, confA1}, true); err != nil || len(idx) != 1 || idx[confA1] != "use_b" {
		t.Fatalf("index after delete: %v %v", idx, err)
	}
	if mk, err := su.Markers(ctx, []MessageRef{{"s1", "use_a-m1"}, {"s1", "use_b-m1"}}, true, false); err != nil || len(mk) != 1 {
		t.Fatalf("markers after delete: %v %v", mk, err)
	}
	if got := eventsOf(t, s, "use_a", 0); len(got) != 0 {
		t.Fatalf("events after delete: %v", got)
	}
	if logs, err := s.ProfileLog(ctx, "use_a"); err != nil || len(logs) != 0 {
		t.Fatalf("log after delete: %v %v", logs, err)
	}
	if got := eventsOf(t, s, "use_b", 2); len(got) != 2 {
		t.Fatalf("another profile's events: %v", got)
	}
	if err := s.DeleteItems(ctx, keys); err != nil {
		t.Fatalf("deleting again: %v", err)
	}
}

func confPersonDeleteProfile(t *testing.T, s PersonStore, _ backendData) {
	ctx := context.Background()
	su := s.(storeUnderTest)
	seedPerson(t, su, "use_a", 1, confU1)
	cur := readOne(t, su, "use_a")
	if err := s.DeleteProfile(ctx, "use_a", cur.Version-1); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale version: %v", err)
	}
	if readOne(t, su, "use_a") == nil {
		t.Fatal("a stale delete deleted the profile")
	}
	if err := s.DeleteProfile(ctx, "use_a", cur.Version); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if ps, err := s.Profiles(ctx, []string{"use_a"}, true); err != nil || len(ps) != 0 {
		t.Fatalf("after delete: %v %v", ps, err)
	}
	if err := s.DeleteProfile(ctx, "use_a", cur.Version); err != nil {
		t.Fatalf("deleting an absent profile: %v", err)
	}
}
