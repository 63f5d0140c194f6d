package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/tracking"
)

// TestStoreConformance runs the one conformance suite of the ports (GraphStore,
// AttemptCounter, the read model) against every backend: the in-memory store always, the
// DynamoDB adapter on DynamoDB Local with the integration build tag.
func TestStoreConformance(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) { runStoreConformance(t, b.open) })
}

func runStoreConformance(t *testing.T, open func(t testing.TB) (storeUnderTest, backendData)) {
	cases := []struct {
		name string
		fn   func(t *testing.T, s storeUnderTest, d backendData)
	}{
		{"CommitThenRead", confCommitThenRead},
		{"NotFound", confNotFound},
		{"StaleVersionConflicts", confStaleVersion},
		{"NewProfileThatExistsConflicts", confProfileExists},
		{"IndexedIdentifierConflicts", confIdentifierExists},
		{"StoredEventConflictsPerSource", confEventExists},
		{"ReapplyingACommitChangesNothing", confReapply},
		{"MergePointersAndMergedTimelines", confMerged},
		{"PagingNewestFirst", confPaging},
		{"ExpiredEventsNotListed", confTTL},
		{"LegacyMarkers", confLegacyMarkers},
		{"AttemptCounter", confAttempts},
		{"OversizedItemRefusedWritesNothing", confRefused},
		{"OverlongKeyReadRefused", confRefusedRead},
		{"ConcurrentUpdatesLoseNothing", confConcurrent},
		{"AppendWritesProfileAndEvents", confAppend},
		{"AppendStaleVersionWritesNothing", confAppendStale},
		{"AppendStoredEventIsDuplicate", confAppendDup},
		{"AppendOversizedItemRefusedWritesNothing", confAppendRefused},
		{"AppendOnlyOneStoredProfileAndEvents", confAppendNotAppendable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, d := open(t)
			c.fn(t, s, d)
		})
	}
}

var confT = time.Now().UTC().Truncate(time.Second)

func confEvent(profile, source, id string, minute int) StoredEvent {
	return StoredEvent{ProfileID: profile, SourceID: source, Expires: confT.Add(24 * time.Hour),
		Message: tracking.Message{Type: "track", MessageID: id, Event: "E", Timestamp: confT.Add(time.Duration(minute) * time.Minute)}}
}

func confProfile(id string, ids ...Identifier) *Profile {
	p := &Profile{ID: id, CreatedAt: confT, UpdatedAt: confT}
	for _, x := range ids {
		p.addIdentifier(IdentifierRecord{Identifier: x, CreatedAt: confT})
	}
	return p
}

func mustCommit(t *testing.T, s storeUnderTest, c *Commit) {
	t.Helper()
	if err := s.Commit(context.Background(), c); err != nil {
		t.Fatalf("commit: %v", err)
	}
}

func wantConflict(t *testing.T, s storeUnderTest, c *Commit) {
	t.Helper()
	if err := s.Commit(context.Background(), c); !errors.Is(err, ErrConflict) {
		t.Fatalf("commit: %v, want ErrConflict", err)
	}
}

func readOne(t *testing.T, s storeUnderTest, id string) *Profile {
	t.Helper()
	ps, err := s.Profiles(context.Background(), []string{id}, true)
	if err != nil {
		t.Fatal(err)
	}
	return ps[id]
}

var (
	confU1 = NewIdentifier(TypeUserID, "u1")
	confA1 = NewIdentifier(TypeAnonymousID, "a1")
)

func confCommitThenRead(t *testing.T, s storeUnderTest, _ backendData) {
	ctx := context.Background()
	p := confProfile("use_p1", confU1)
	p.EventCount = 1
	ev := confEvent("use_p1", "s1", "m1", 0)
	log := LogEntry{At: confT, MessageID: "m1", ProfileID: "use_p1", Actions: []Action{{Kind: ActionCreate, Identifiers: []Identifier{confU1}}}}
	mustCommit(t, s, &Commit{Profiles: []*Profile{p}, IDs: map[Identifier]string{confU1: "use_p1"}, Events: []StoredEvent{ev}, Logs: []LogEntry{log}})
	got := readOne(t, s, "use_p1")
	if got == nil || got.Version != 1 || got.EventCount != 1 || !got.Has(confU1) {
		t.Fatalf("profile after commit: %+v", got)
	}
	idx, err := s.Index(ctx, []Identifier{confU1, confA1}, true)
	if err != nil || len(idx) != 1 || idx[confU1] != "use_p1" {
		t.Fatalf("index: %v %v", idx, err)
	}
	mk, err := s.Markers(ctx, []MessageRef{{"s1", "m1"}, {"s2", "m1"}}, true, true)
	if err != nil || len(mk) != 1 || mk[MessageRef{"s1", "m1"}].Profile != "use_p1" || mk[MessageRef{"s1", "m1"}].Msg.Event != "E" {
		t.Fatalf("markers: %+v %v", mk, err)
	}
	if lp, err := s.Lookup(ctx, confU1); err != nil || lp == nil || lp.ID != "use_p1" {
		t.Fatalf("lookup: %+v %v", lp, err)
	}
	evs, next, err := s.Events(ctx, got, Page{})
	if err != nil || next != "" || len(evs) != 1 || evs[0].Message.MessageID != "m1" || evs[0].SourceID != "s1" || evs[0].ProfileID != "use_p1" || !evs[0].Expires.Equal(ev.Expires) {
		t.Fatalf("events: %+v %q %v", evs, next, err)
	}
	logs, _, err := s.MergeLog(ctx, got, Page{})
	if err != nil || len(logs) != 1 || logs[0].MessageID != "m1" || logs[0].Actions[0].Kind != ActionCreate {
		t.Fatalf("merge log: %+v %v", logs, err)
	}
	// The next version is conditioned on the one read.
	got.EventCount = 2
	mustCommit(t, s, &Commit{Profiles: []*Profile{got}})
	if again := readOne(t, s, "use_p1"); again.Version != 2 || again.EventCount != 2 {
		t.Fatalf("second version: %+v", again)
	}
}

func confNotFound(t *testing.T, s storeUnderTest, _ backendData) {
	ctx := context.Background()
	if ps, err := s.Profiles(ctx, []string{"use_none"}, false); err != nil || len(ps) != 0 {
		t.Fatalf("profiles: %v %v", ps, err)
	}
	if p, err := s.Profile(ctx, "use_none"); err != nil || p != nil {
		t.Fatalf("profile: %+v %v", p, err)
	}
	if p, err := s.Lookup(ctx, confU1); err != nil || p != nil {
		t.Fatalf("lookup: %+v %v", p, err)
	}
	if idx, err := s.Index(ctx, []Identifier{confU1}, false); err != nil || len(idx) != 0 {
		t.Fatalf("index: %v %v", idx, err)
	}
	if mk, err := s.Markers(ctx, []MessageRef{{"s1", "m1"}}, false, true); err != nil || len(mk) != 0 {
		t.Fatalf("markers: %v %v", mk, err)
	}
	if n, err := s.Attempts(ctx, "s1", "m1"); err != nil || n != 0 {
		t.Fatalf("attempts: %d %v", n, err)
	}
	if err := s.Commit(ctx, &Commit{}); err != nil {
		t.Fatalf("empty commit: %v", err)
	}
}

func confStaleVersion(t *testing.T, s storeUnderTest, _ backendData) {
	mustCommit(t, s, &Commit{Profiles: []*Profile{confProfile("use_p1")}})
	a, b := readOne(t, s, "use_p1"), readOne(t, s, "use_p1")
	a.EventCount = 1
	mustCommit(t, s, &Commit{Profiles: []*Profile{a}})
	// b was read at the version a replaced: its commit, and everything in it, is refused.
	b.EventCount = 7
	wantConflict(t, s, &Commit{Profiles: []*Profile{b}, IDs: map[Identifier]string{confA1: "use_p1"}, Events: []StoredEvent{confEvent("use_p1", "s1", "m9", 0)}})
	if p := readOne(t, s, "use_p1"); p.Version != 2 || p.EventCount != 1 {
		t.Fatalf("after the stale commit: %+v", p)
	}
	assertNothingOf(t, s, confA1, MessageRef{"s1", "m9"})
}

// assertNothingOf checks a refused commit left neither its index entry nor its event.
func assertNothingOf(t *testing.T, s storeUnderTest, id Identifier, ref MessageRef) {
	t.Helper()
	ctx := context.Background()
	if idx, _ := s.Index(ctx, []Identifier{id}, true); len(idx) != 0 {
		t.Fatalf("index entry of a refused commit: %v", idx)
	}
	if mk, _ := s.Markers(ctx, []MessageRef{ref}, true, false); len(mk) != 0 {
		t.Fatalf("event of a refused commit: %v", mk)
	}
}

func confProfileExists(t *testing.T, s storeUnderTest, _ backendData) {
	mustCommit(t, s, &Commit{Profiles: []*Profile{confProfile("use_p1", confU1)}})
	// Another writer creating the same profile (Version 0) conflicts.
	wantConflict(t, s, &Commit{Profiles: []*Profile{confProfile("use_p1", confA1)}, IDs: map[Identifier]string{confA1: "use_p1"}})
	if p := readOne(t, s, "use_p1"); p.Version != 1 || p.Has(confA1) {
		t.Fatalf("profile: %+v", p)
	}
	assertNothingOf(t, s, confA1, MessageRef{"s1", "none"})
}

func confIdentifierExists(t *testing.T, s storeUnderTest, _ backendData) {
	mustCommit(t, s, &Commit{Profiles: []*Profile{confProfile("use_p1", confU1)}, IDs: map[Identifier]string{confU1: "use_p1"}})
	// A second profile claiming u1 conflicts: nothing of it is written.
	wantConflict(t, s, &Commit{Profiles: []*Profile{confProfile("use_p2", confU1)}, IDs: map[Identifier]string{confU1: "use_p2"},
		Events: []StoredEvent{confEvent("use_p2", "s1", "m2", 0)}})
	if p := readOne(t, s, "use_p2"); p != nil {
		t.Fatalf("profile of a refused commit: %+v", p)
	}
	if idx, _ := s.Index(context.Background(), []Identifier{confU1}, true); idx[confU1] != "use_p1" {
		t.Fatalf("index: %v", idx)
	}
}

func confEventExists(t *testing.T, s storeUnderTest, _ backendData) {
	mustCommit(t, s, &Commit{Profiles: []*Profile{confProfile("use_p1")}, Events: []StoredEvent{confEvent("use_p1", "s1", "m1", 0)}})
	p := readOne(t, s, "use_p1")
	wantConflict(t, s, &Commit{Profiles: []*Profile{p}, Events: []StoredEvent{confEvent("use_p1", "s1", "m1", 1)}})
	// The same messageId from another source is another event.
	mustCommit(t, s, &Commit{Profiles: []*Profile{p}, Events: []StoredEvent{confEvent("use_p1", "s2", "m1", 1)}})
	evs, _, err := s.Events(context.Background(), readOne(t, s, "use_p1"), Page{Limit: 10})
	if err != nil || len(evs) != 2 {
		t.Fatalf("events: %+v %v", evs, err)
	}
}

func confReapply(t *testing.T, s storeUnderTest, _ backendData) {
	c := &Commit{Profiles: []*Profile{confProfile("use_p1", confU1)}, IDs: map[Identifier]string{confU1: "use_p1"},
		Events: []StoredEvent{confEvent("use_p1", "s1", "m1", 0)}, Logs: []LogEntry{{At: confT, MessageID: "m1", ProfileID: "use_p1"}}}
	mustCommit(t, s, c)
	// A retried invocation replaying the same commit is refused whole: nothing doubles.
	wantConflict(t, s, c)
	p := readOne(t, s, "use_p1")
	evs, _, _ := s.Events(context.Background(), p, Page{Limit: 10})
	logs, _, _ := s.MergeLog(context.Background(), p, Page{Limit: 10})
	if p.Version != 1 || len(evs) != 1 || len(logs) != 1 {
		t.Fatalf("after a replayed commit: version %d, %d events, %d log lines", p.Version, len(evs), len(logs))
	}
}

func confMerged(t *testing.T, s storeUnderTest, _ backendData) {
	ctx := context.Background()
	mustCommit(t, s, &Commit{Profiles: []*Profile{confProfile("use_a", confA1), confProfile("use_b", confU1)},
		IDs:    map[Identifier]string{confA1: "use_a", confU1: "use_b"},
		Events: []StoredEvent{confEvent("use_a", "s1", "ma", 0), confEvent("use_b", "s1", "mb", 1)},
		Logs:   []LogEntry{{At: confT, MessageID: "ma", ProfileID: "use_a"}, {At: confT.Add(time.Minute), MessageID: "mb", ProfileID: "use_b"}}})
	a, b := readOne(t, s, "use_a"), readOne(t, s, "use_b")
	if refused := b.absorb(a, confT); len(refused) != 0 {
		t.Fatalf("absorb refused %v", refused)
	}
	mustCommit(t, s, &Commit{Profiles: []*Profile{a, b}})
	p, err := s.Profile(ctx, "use_a")
	if err != nil || p == nil || p.ID != "use_b" || !p.Has(confA1) {
		t.Fatalf("profile use_a follows to %+v %v", p, err)
	}
	if lp, err := s.Lookup(ctx, confA1); err != nil || lp == nil || lp.ID != "use_b" {
		t.Fatalf("lookup of the merged identifier: %+v %v", lp, err)
	}
	evs, _, err := s.Events(ctx, p, Page{Limit: 10})
	if err != nil || len(evs) != 2 || evs[0].Message.MessageID != "mb" || evs[1].Message.MessageID != "ma" {
		t.Fatalf("merged timeline: %+v %v", evs, err)
	}
	logs, _, err := s.MergeLog(ctx, p, Page{Limit: 10})
	if err != nil || len(logs) != 2 || logs[0].MessageID != "mb" {
		t.Fatalf("merged log: %+v %v", logs, err)
	}
}

func confPaging(t *testing.T, s storeUnderTest, _ backendData) {
	ctx := context.Background()
	c := &Commit{Profiles: []*Profile{confProfile("use_p1")}}
	for i := 0; i < 25; i++ {
		c.Events = append(c.Events, confEvent("use_p1", "s1", fmt.Sprintf("m%02d", i), i))
		c.Logs = append(c.Logs, LogEntry{At: confT.Add(time.Duration(i) * time.Second), MessageID: fmt.Sprintf("m%02d", i), ProfileID: "use_p1"})
	}
	mustCommit(t, s, c)
	p := readOne(t, s, "use_p1")
	var ids []string
	page := Page{Limit: 10}
	for n := 0; ; n++ {
		evs, next, err := s.Events(ctx, p, page)
		if err != nil || n > 3 {
			t.Fatalf("page %d: %v", n, err)
		}
		for _, e := range evs {
			ids = append(ids, e.Message.MessageID)
		}
		if next == "" {
			break
		}
		page.Next = next
	}
	if len(ids) != 25 || ids[0] != "m24" || ids[24] != "m00" || strings.Join(ids, ",") != strings.Join(descending(25), ",") {
		t.Fatalf("paged timeline: %v", ids)
	}
	logs, next, err := s.MergeLog(ctx, p, Page{Limit: 20})
	if err != nil || len(logs) != 20 || logs[0].MessageID != "m24" || next == "" {
		t.Fatalf("merge log page: %d %q %v", len(logs), next, err)
	}
	if rest, last, err := s.MergeLog(ctx, p, Page{Limit: 20, Next: next}); err != nil || len(rest) != 5 || last != "" || rest[4].MessageID != "m00" {
		t.Fatalf("merge log second page: %d %q %v", len(rest), last, err)
	}
	// A cursor of the merge log is no cursor of the timeline, and garbage is no cursor at all.
	var ce *CursorError
	if _, _, err := s.Events(ctx, p, Page{Next: next}); !errors.As(err, &ce) {
		t.Fatalf("foreign cursor: %v", err)
	}
	if _, _, err := s.MergeLog(ctx, p, Page{Next: "!!"}); !errors.As(err, &ce) {
		t.Fatalf("bad cursor: %v", err)
	}
}

func descending(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("m%02d", n-1-i)
	}
	return out
}

func confTTL(t *testing.T, s storeUnderTest, _ backendData) {
	old := confEvent("use_p1", "s1", "old", 0)
	old.Expires = time.Now().Add(-time.Hour)
	mustCommit(t, s, &Commit{Profiles: []*Profile{confProfile("use_p1")}, Events: []StoredEvent{old, confEvent("use_p1", "s1", "new", 1)}})
	evs, _, err := s.Events(context.Background(), readOne(t, s, "use_p1"), Page{Limit: 10})
	if err != nil || len(evs) != 1 || evs[0].Message.MessageID != "new" {
		t.Fatalf("timeline with an expired event: %+v %v", evs, err)
	}
	// When the store deletes an expired item is its own business (DynamoDB: within days;
	// DynamoDB Local: at once): the marker may or may not still dedupe, but reading it works.
	if _, err := s.Markers(context.Background(), []MessageRef{{"s1", "old"}}, true, false); err != nil {
		t.Fatalf("marker of the expired event: %v", err)
	}
}

func confLegacyMarkers(t *testing.T, s storeUnderTest, d backendData) {
	ctx := context.Background()
	d.putLegacyMarker(t, "old-1", "s1", "use_x", tracking.Message{MessageID: "old-1", Event: "Old"})
	d.putLegacyMarker(t, "old-2", "", "use_y", tracking.Message{MessageID: "old-2"})
	refs := []MessageRef{{"s1", "old-1"}, {"s2", "old-1"}, {"s3", "old-2"}}
	mk, err := s.Markers(ctx, refs, true, true)
	if err != nil || len(mk) != 2 || mk[refs[0]].Profile != "use_x" || mk[refs[0]].Msg.Event != "Old" || mk[refs[2]].Profile != "use_y" {
		t.Fatalf("legacy markers: %+v %v", mk, err)
	}
	if mk, err := s.Markers(ctx, refs, true, false); err != nil || len(mk) != 0 {
		t.Fatalf("legacy markers not read: %+v %v", mk, err)
	}
	// A marker of its own wins over the legacy one.
	mustCommit(t, s, &Commit{Profiles: []*Profile{confProfile("use_z")}, Events: []StoredEvent{confEvent("use_z", "s1", "old-1", 0)}})
	if mk, _ := s.Markers(ctx, refs[:1], true, true); mk[refs[0]].Profile != "use_z" {
		t.Fatalf("own marker: %+v", mk)
	}
}

func confAttempts(t *testing.T, s storeUnderTest, _ backendData) {
	ctx := context.Background()
	for want := 1; want <= 3; want++ {
		if n, err := s.CountAttempt(ctx, "s1", "m1"); err != nil || n != want {
			t.Fatalf("count attempt: %d %v, want %d", n, err, want)
		}
	}
	if n, err := s.Attempts(ctx, "s1", "m1"); err != nil || n != 3 {
		t.Fatalf("attempts: %d %v", n, err)
	}
	if n, err := s.Attempts(ctx, "s2", "m1"); err != nil || n != 0 {
		t.Fatalf("attempts of another source: %d %v", n, err)
	}
}

func confRefused(t *testing.T, s storeUnderTest, _ backendData) {
	big := confEvent("use_p1", "s1", "big", 0)
	big.Message.Properties = json.RawMessage(`{"blob":"` + noise(600<<10) + `"}`)
	err := s.Commit(context.Background(), &Commit{Profiles: []*Profile{confProfile("use_p1", confU1)}, IDs: map[Identifier]string{confU1: "use_p1"}, Events: []StoredEvent{big}})
	if !errors.Is(err, ErrRefused) || errors.Is(err, ErrConflict) {
		t.Fatalf("oversized event: %v, want ErrRefused", err)
	}
	if p := readOne(t, s, "use_p1"); p != nil {
		t.Fatalf("profile of a refused commit: %+v", p)
	}
	assertNothingOf(t, s, confU1, MessageRef{"s1", "big"})
}

// confConcurrent: writers read-modify-write one profile, re-reading on ErrConflict; every
// increment survives.
func confConcurrent(t *testing.T, s storeUnderTest, _ backendData) {
	mustCommit(t, s, &Commit{Profiles: []*Profile{confProfile("use_p1")}})
	const writers, each = 6, 5
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if err := incrementEvents(s, fmt.Sprintf("w%d-%d", w, i)); err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	p := readOne(t, s, "use_p1")
	evs, _, _ := s.Events(context.Background(), p, Page{Limit: 100})
	if p.EventCount != writers*each || p.Version != writers*each+1 || len(evs) != writers*each {
		t.Fatalf("after %d increments: count %d, version %d, %d events", writers*each, p.EventCount, p.Version, len(evs))
	}
}

func incrementEvents(s storeUnderTest, mid string) error {
	ctx := context.Background()
	for attempt := 0; attempt < 200; attempt++ {
		ps, err := s.Profiles(ctx, []string{"use_p1"}, true)
		if err != nil {
			return err
		}
		p := ps["use_p1"]
		p.EventCount++
		err = s.Commit(ctx, &Commit{Profiles: []*Profile{p}, Events: []StoredEvent{confEvent("use_p1", "s1", mid, 0)}})
		if !errors.Is(err, ErrConflict) {
			return err
		}
	}
	return fmt.Errorf("%s: conflicts without end", mid)
}

func confRefusedRead(t *testing.T, s storeUnderTest, _ backendData) {
	long := NewIdentifier(TypeUserID, strings.Repeat("u", 3000))
	if _, err := s.Index(context.Background(), []Identifier{confU1, long}, false); !errors.Is(err, ErrRefused) {
		t.Fatalf("index of an identifier too long for a key: %v, want ErrRefused", err)
	}
}

// stampedEvent is confEvent with a stamp.
func stampedEvent(profile, source, id string, minute int, seq int64) StoredEvent {
	e := confEvent(profile, source, id, minute)
	e.Seq = seq
	return e
}

func mustAppend(t *testing.T, s storeUnderTest, c *Commit) []Appended {
	t.Helper()
	out, err := s.Append(context.Background(), c)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	if len(out) != len(c.Events) {
		t.Fatalf("append: %d outcomes for %d events", len(out), len(c.Events))
	}
	return out
}

func confAppend(t *testing.T, s storeUnderTest, _ backendData) {
	ctx := context.Background()
	mustCommit(t, s, &Commit{Profiles: []*Profile{confProfile("use_p1", confU1)}, IDs: map[Identifier]string{confU1: "use_p1"}})
	p := readOne(t, s, "use_p1")
	p.EventCount, p.Seq = 2, 2
	out := mustAppend(t, s, &Commit{Profiles: []*Profile{p}, Events: []StoredEvent{stampedEvent("use_p1", "s1", "m1", 0, 1), stampedEvent("use_p1", "s1", "m2", 1, 2)}})
	for i, a := range out {
		if a.Dup != nil || a.Err != nil {
			t.Fatalf("event %d: %+v", i, a)
		}
	}
	got := readOne(t, s, "use_p1")
	if got.Version != 2 || got.EventCount != 2 || got.Seq != 2 {
		t.Fatalf("profile after append: %+v", got)
	}
	mk, err := s.Markers(ctx, []MessageRef{{"s1", "m1"}, {"s1", "m2"}}, true, false)
	if err != nil || mk[MessageRef{"s1", "m1"}].Seq != 1 || mk[MessageRef{"s1", "m2"}].Seq != 2 || mk[MessageRef{"s1", "m2"}].Profile != "use_p1" {
		t.Fatalf("markers: %+v %v", mk, err)
	}
	evs, _, err := s.Events(ctx, got, Page{Limit: 10})
	if err != nil || len(evs) != 2 || evs[0].Message.MessageID != "m2" || evs[0].Seq != 2 {
		t.Fatalf("timeline: %+v %v", evs, err)
	}
}

func confAppendStale(t *testing.T, s storeUnderTest, _ backendData) {
	mustCommit(t, s, &Commit{Profiles: []*Profile{confProfile("use_p1")}})
	a, b := readOne(t, s, "use_p1"), readOne(t, s, "use_p1")
	a.EventCount, a.Seq = 1, 1
	mustAppend(t, s, &Commit{Profiles: []*Profile{a}, Events: []StoredEvent{stampedEvent("use_p1", "s1", "m1", 0, 1)}})
	b.EventCount, b.Seq = 1, 1
	if _, err := s.Append(context.Background(), &Commit{Profiles: []*Profile{b}, Events: []StoredEvent{stampedEvent("use_p1", "s1", "m9", 0, 1)}}); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale append: %v, want ErrConflict", err)
	}
	if p := readOne(t, s, "use_p1"); p.Version != 2 || p.EventCount != 1 {
		t.Fatalf("after the stale append: %+v", p)
	}
	assertNothingOf(t, s, confA1, MessageRef{"s1", "m9"})
}

func confAppendDup(t *testing.T, s storeUnderTest, _ backendData) {
	ctx := context.Background()
	mustCommit(t, s, &Commit{Profiles: []*Profile{confProfile("use_p1")}, Events: []StoredEvent{stampedEvent("use_p1", "s1", "m1", 0, 1)}})
	p := readOne(t, s, "use_p1")
	p.Seq = 3
	// m1 is stored already (with stamp 1): its put fails and reports the stored event; m2 is
	// stored; the profile is written.
	e1 := stampedEvent("use_p1", "s1", "m1", 5, 2)
	e1.Message.Event = "Other"
	out := mustAppend(t, s, &Commit{Profiles: []*Profile{p}, Events: []StoredEvent{e1, stampedEvent("use_p1", "s1", "m2", 1, 3)}})
	if d := out[0].Dup; d == nil || d.Profile != "use_p1" || d.Seq != 1 || d.Msg == nil || d.Msg.Event != "E" || out[0].Err != nil {
		t.Fatalf("stored event: %+v", out[0])
	}
	if out[1].Dup != nil || out[1].Err != nil {
		t.Fatalf("new event: %+v", out[1])
	}
	if got := readOne(t, s, "use_p1"); got.Version != 2 || got.Seq != 3 {
		t.Fatalf("profile: %+v", got)
	}
	mk, _ := s.Markers(ctx, []MessageRef{{"s1", "m1"}}, true, false)
	if m := mk[MessageRef{"s1", "m1"}]; m.Seq != 1 || m.Msg.Event != "E" {
		t.Fatalf("the stored event was overwritten: %+v", m)
	}
}

func confAppendRefused(t *testing.T, s storeUnderTest, _ backendData) {
	mustCommit(t, s, &Commit{Profiles: []*Profile{confProfile("use_p1")}})
	p := readOne(t, s, "use_p1")
	p.EventCount = 2
	big := stampedEvent("use_p1", "s1", "big", 0, 2)
	big.Message.Properties = json.RawMessage(`{"blob":"` + noise(600<<10) + `"}`)
	_, err := s.Append(context.Background(), &Commit{Profiles: []*Profile{p}, Events: []StoredEvent{stampedEvent("use_p1", "s1", "ok", 0, 1), big}})
	if !errors.Is(err, ErrRefused) || errors.Is(err, ErrConflict) {
		t.Fatalf("oversized event: %v, want ErrRefused", err)
	}
	if got := readOne(t, s, "use_p1"); got.Version != 1 || got.EventCount != 0 {
		t.Fatalf("profile of a refused append: %+v", got)
	}
	assertNothingOf(t, s, confA1, MessageRef{"s1", "ok"})
	assertNothingOf(t, s, confA1, MessageRef{"s1", "big"})
}

func confAppendNotAppendable(t *testing.T, s storeUnderTest, _ backendData) {
	ctx := context.Background()
	mustCommit(t, s, &Commit{Profiles: []*Profile{confProfile("use_p1")}})
	p := readOne(t, s, "use_p1")
	for name, c := range map[string]*Commit{
		"a new profile":    {Profiles: []*Profile{confProfile("use_p2")}, Events: []StoredEvent{confEvent("use_p2", "s1", "m1", 0)}},
		"an index entry":   {Profiles: []*Profile{p}, IDs: map[Identifier]string{confU1: "use_p1"}, Events: []StoredEvent{confEvent("use_p1", "s1", "m1", 0)}},
		"a merge log line": {Profiles: []*Profile{p}, Events: []StoredEvent{confEvent("use_p1", "s1", "m1", 0)}, Logs: []LogEntry{{At: confT, MessageID: "m1", ProfileID: "use_p1"}}},
		"two profiles":     {Profiles: []*Profile{p, confProfile("use_p2")}, Events: []StoredEvent{confEvent("use_p1", "s1", "m1", 0)}},
		"no event at all":  {Profiles: []*Profile{p}},
	} {
		if _, err := s.Append(ctx, c); err == nil || errors.Is(err, ErrConflict) {
			t.Fatalf("append of %s: %v, want an error", name, err)
		}
	}
	if got := readOne(t, s, "use_p1"); got.Version != 1 {
		t.Fatalf("profile: %+v", got)
	}
	assertNothingOf(t, s, confU1, MessageRef{"s1", "m1"})
}
