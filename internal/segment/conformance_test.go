package segment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/activations"
)

// TestMemStoreConformance runs the stores' conformance suite on the in-memory implementation
// (the DynamoDB adapter runs it under the integration tag: TestDynamoStoreConformance).
func TestMemStoreConformance(t *testing.T) {
	runStoreConformance(t, func(*testing.T) Stores { return NewMemStore() })
}

// runStoreConformance is the one suite every implementation of the ports passes: what the
// handler and the service rely on.
func runStoreConformance(t *testing.T, newStores func(t *testing.T) Stores) {
	cases := []struct {
		name string
		run  func(t *testing.T, s Stores)
	}{
		{"DefinitionsVersioned", confDefinitions},
		{"JobProgressConditional", confJobs},
		{"StateVersionConflicts", confStateVersions},
		{"OutboxKeptUntilNextCommit", confOutbox},
		{"EventualLoad", confEventualLoad},
		{"OverLimitRefused", confTooLarge},
		{"MultiProfileCommitAllOrNothing", confMultiCommit},
		{"MembersIndex", confMembers},
		{"MembersPaging", confMembersPaging},
		{"RegistryAndCursors", confRegistry},
		{"ScheduleIndex", confSchedule},
		{"ScheduleOrderAndLimit", confScheduleOrder},
		{"CommitBeyondOneTransaction", confLargeCommit},
		{"ConcurrentUpdatesLoseNothing", confConcurrent},
		{"PersonalDataErased", confPersonalData},
		{"ErasedProfileStaysErased", confTombstone},
		{"DroppedCounter", confDropped},
		{"TrainingModelsChunks", confTraining},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, newStores(t)) })
	}
}

var bg = context.Background()

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got %v, want %v", what, err, want)
	}
}

func load(t *testing.T, s StateStore, pid string) *Snapshot {
	t.Helper()
	l, err := s.Load(bg, pid, true)
	must(t, err)
	return l
}

// update is a read-modify-write of one profile: load, change, commit (no retry).
func update(s StateStore, pid string, fn func(*State), outbox ...activations.Record) error {
	l, err := s.Load(bg, pid, true)
	if err != nil {
		return err
	}
	st := l.State
	if st == nil {
		st = NewState(pid)
	}
	fn(st)
	return s.Commit(bg, []Write{{State: st, Was: l, Outbox: outbox}}, MaxStateBytes)
}

func confDefinitions(t *testing.T, s Stores) {
	ct := &ComputedTrait{ID: "ct_1", Name: "Orders", Key: "orders", Kind: KindCount, Event: EventFilter{Name: "Order Completed"}, Version: 1}
	must(t, s.PutTrait(bg, ct, &Job{DefinitionID: "ct_1", Version: 1, Status: StatusComputing}))
	wantErr(t, "second create", s.PutTrait(bg, ct, nil), ErrConflict)
	ct.Version, ct.Name = 2, "Orders v2"
	must(t, s.PutTrait(bg, ct, nil))
	wantErr(t, "stale update", s.PutTrait(bg, ct, nil), ErrConflict)
	ct.Version = 4
	wantErr(t, "version skipped", s.PutTrait(bg, ct, nil), ErrConflict)
	a := aud(t, "aud_1", "Buyers", `{"event":{"name":"Order Completed"}}`)
	a.Version = 1
	must(t, s.PutAudience(bg, a, &Job{DefinitionID: "aud_1", Version: 1, Status: StatusComputing}))

	d, err := s.LoadDefinitions(bg)
	must(t, err)
	if len(d.Traits) != 1 || d.Traits[0].Name != "Orders v2" || d.Traits[0].Version != 2 || len(d.Audiences) != 1 || d.Audiences[0].Name != "Buyers" || len(d.Jobs) != 2 {
		t.Fatalf("definitions: %+v %+v %+v", d.Traits, d.Audiences, d.Jobs)
	}
	must(t, s.DeleteTrait(bg, "ct_1"))
	wantErr(t, "delete again", s.DeleteTrait(bg, "ct_1"), ErrNotFound)
	wantErr(t, "delete unknown audience", s.DeleteAudience(bg, "aud_x"), ErrNotFound)
	d, err = s.LoadDefinitions(bg)
	must(t, err)
	if len(d.Traits) != 0 || d.Jobs["ct_1"] != nil || d.Jobs["aud_1"] == nil {
		t.Fatalf("after delete: %+v %+v", d.Traits, d.Jobs)
	}
}

func confJobs(t *testing.T, s Stores) {
	ct := &ComputedTrait{ID: "ct_1", Name: "Orders", Key: "orders", Kind: KindCount, Event: EventFilter{Name: "Order Completed"}, Version: 1}
	old := &Job{DefinitionID: "ct_1", Version: 1, Status: StatusComputing}
	wantErr(t, "progress of a job never started", s.PutJob(bg, old), ErrConflict)
	must(t, s.PutTrait(bg, ct, old))
	old.Processed, old.Shard, old.Cursor = 5, 3, cursorAfter("p5")
	must(t, s.PutJob(bg, old))
	d, err := s.LoadDefinitions(bg)
	must(t, err)
	if j := d.Jobs["ct_1"]; j.Processed != 5 || j.Shard != 3 || j.Cursor != old.Cursor {
		t.Fatalf("job: %+v", j)
	}
	ct.Version = 2
	must(t, s.PutTrait(bg, ct, &Job{DefinitionID: "ct_1", Version: 2, Status: StatusComputing}))
	wantErr(t, "progress of a replaced job", s.PutJob(bg, old), ErrConflict)
	d, err = s.LoadDefinitions(bg)
	must(t, err)
	if j := d.Jobs["ct_1"]; j.Version != 2 || j.Processed != 0 {
		t.Fatalf("restarted job overwritten by the old one: %+v", j)
	}
}

func confStateVersions(t *testing.T, s Stores) {
	if l := load(t, s, "p1"); l.State != nil || len(l.Outbox) != 0 {
		t.Fatalf("unknown profile: %+v", l)
	}
	st := NewState("p1")
	st.acc("v").T = &Tally{N: 1, First: &Edge{T: 1, ID: "e1", V: json.RawMessage(`{"a":1}`)}}
	st.Email = "a@example.com"
	must(t, s.Commit(bg, []Write{{State: st, Was: NewSnapshot(nil, nil)}}, MaxStateBytes))
	l := load(t, s, "p1")
	if l.State == nil || l.State.Ver != 1 || l.State.Email != "a@example.com" || l.State.Aggs["v"].T.N != 1 || string(l.State.Aggs["v"].T.First.V) != `{"a":1}` {
		t.Fatalf("stored state: %+v", l.State)
	}
	wantErr(t, "second create", s.Commit(bg, []Write{{State: st, Was: NewSnapshot(nil, nil)}}, MaxStateBytes), ErrConflict)
	l1, l2 := load(t, s, "p1"), load(t, s, "p1")
	l1.State.Email = "b@example.com"
	must(t, s.Commit(bg, []Write{{State: l1.State, Was: l1}}, MaxStateBytes))
	l2.State.Email = "lost@example.com"
	wantErr(t, "stale write", s.Commit(bg, []Write{{State: l2.State, Was: l2}}, MaxStateBytes), ErrConflict)
	if l := load(t, s, "p1"); l.State.Ver != 2 || l.State.Email != "b@example.com" {
		t.Fatalf("after the conflict: ver %d email %s", l.State.Ver, l.State.Email)
	}
	ghost := NewState("p2")
	ghost.Ver = 5
	wantErr(t, "update of a state never stored", s.Commit(bg, []Write{{State: ghost, Was: NewSnapshot(nil, nil)}}, MaxStateBytes), ErrConflict)
}

// The outbox lives with the state: a commit's records are loaded with that version until the
// next commit of the profile replaces them (none: cleared), at no write of their own.
func confOutbox(t *testing.T, s Stores) {
	rec := func(id string) activations.Record {
		return activations.Record{ID: id, Kind: activations.KindAudienceEntered, ProfileID: "p1"}
	}
	must(t, update(s, "p1", func(*State) {}, rec("r1")))
	if l := load(t, s, "p1"); len(l.Outbox) != 1 || len(l.Outbox[1]) != 1 || l.Outbox[1][0].ID != "r1" {
		t.Fatalf("outbox of version 1: %+v", l.Outbox)
	}
	must(t, update(s, "p1", func(*State) {}, rec("r2"), rec("r3")))
	if l := load(t, s, "p1"); len(l.Outbox) != 1 || len(l.Outbox[2]) != 2 || l.Outbox[2][1].ID != "r3" {
		t.Fatalf("outbox of version 2 (replacing version 1's): %+v", l.Outbox)
	}
	stale := load(t, s, "p1")
	must(t, update(s, "p1", func(*State) {}, rec("r4")))
	wantErr(t, "stale write with outbox", s.Commit(bg, []Write{{State: stale.State, Was: stale, Outbox: []activations.Record{rec("lost")}}}, MaxStateBytes), ErrConflict)
	if l := load(t, s, "p1"); len(l.Outbox) != 1 || len(l.Outbox[3]) != 1 || l.Outbox[3][0].ID != "r4" {
		t.Fatalf("outbox after a refused write: %+v", l.Outbox)
	}
	must(t, update(s, "p1", func(*State) {}))
	if l := load(t, s, "p1"); len(l.Outbox) != 0 {
		t.Fatalf("a commit without records left %+v", l.Outbox)
	}
	// A large outbox (stored compressed) comes back whole.
	var many []activations.Record
	for i := range 200 {
		many = append(many, rec(fmt.Sprintf("big-%03d", i)))
	}
	must(t, update(s, "p1", func(*State) {}, many...))
	if l := load(t, s, "p1"); len(l.Outbox[5]) != 200 || l.Outbox[5][199].ID != "big-199" {
		t.Fatalf("large outbox: %d records", len(l.Outbox[5]))
	}
}

// An eventually consistent load returns a stored version (after a while, the last one).
func confEventualLoad(t *testing.T, s Stores) {
	must(t, update(s, "p1", func(st *State) { st.Email = "a@example.com" }))
	deadline := time.Now().Add(5 * time.Second)
	for {
		l, err := s.Load(bg, "p1", false)
		must(t, err)
		if l.State != nil && l.State.Ver == 1 && l.State.Email == "a@example.com" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("eventual load: %+v", l.State)
		}
		time.Sleep(50 * time.Millisecond) // polling a store's convergence, with a deadline
	}
}

func confTooLarge(t *testing.T, s Stores) {
	big := NewState("p1")
	big.setTraits(map[string]json.RawMessage{"blob": json.RawMessage(`"` + noise(8<<10) + `"`)})
	err := s.Commit(bg, []Write{{State: big, Was: NewSnapshot(nil, nil)}}, 4<<10)
	wantErr(t, "state over the limit", err, ErrTooLarge)
	if l := load(t, s, "p1"); l.State != nil {
		t.Fatal("a refused state was stored")
	}
	small := NewState("p2")
	out := []activations.Record{{ID: "r", Kind: activations.KindTraitsChanged, Traits: map[string]json.RawMessage{"x": json.RawMessage(`"` + noise(8<<10) + `"`)}}}
	wantErr(t, "outbox over the limit", s.Commit(bg, []Write{{State: small, Was: NewSnapshot(nil, nil), Outbox: out}}, 4<<10), ErrTooLarge)
	if l := load(t, s, "p2"); l.State != nil || len(l.Outbox) != 0 {
		t.Fatalf("a refused write left %+v", l)
	}
}

func confMultiCommit(t *testing.T, s Stores) {
	must(t, update(s, "a", func(*State) {}))
	must(t, update(s, "b", func(*State) {}))
	la, lb := load(t, s, "a"), load(t, s, "b")
	must(t, update(s, "b", func(*State) {})) // b moves on
	la.State.Email = "merged@example.com"
	lb.State.MergedInto = "a"
	err := s.Commit(bg, []Write{{State: la.State, Was: la}, {State: lb.State, Was: lb}}, MaxStateBytes)
	wantErr(t, "one stale profile", err, ErrConflict)
	if l := load(t, s, "a"); l.State.Ver != 1 || l.State.Email != "" {
		t.Fatalf("a written although b conflicted: %+v", l.State)
	}
	la, lb = load(t, s, "a"), load(t, s, "b")
	la.State.Email, lb.State.MergedInto = "merged@example.com", "a"
	must(t, s.Commit(bg, []Write{{State: la.State, Was: la}, {State: lb.State, Was: lb}}, MaxStateBytes))
	if a, b := load(t, s, "a").State, load(t, s, "b").State; a.Ver != 2 || b.Ver != 3 || b.MergedInto != "a" {
		t.Fatalf("after the merge: a %d b %d %q", a.Ver, b.Ver, b.MergedInto)
	}
}

func join(at time.Time, ids ...string) func(*State) {
	return func(st *State) {
		for _, id := range ids {
			st.Members[id] = &Membership{In: true, EnteredAt: at, Seq: 1}
		}
	}
}

func confMembers(t *testing.T, s Stores) {
	must(t, update(s, "p1", join(t0, "x", "y")))
	ms, _, err := s.Members(bg, "x", 10, "")
	must(t, err)
	if len(ms) != 1 || ms[0].ProfileID != "p1" || !ms[0].EnteredAt.Equal(t0) {
		t.Fatalf("members of x: %+v", ms)
	}
	must(t, update(s, "p1", func(st *State) { st.Members["x"].In = false }))
	if n, err := s.Size(bg, "x"); err != nil || n != 0 {
		t.Fatalf("size of x after the exit: %d %v", n, err)
	}
	if n, err := s.Size(bg, "y"); err != nil || n != 1 {
		t.Fatalf("size of y: %d %v", n, err)
	}
	must(t, s.DeleteMember(bg, "y", "p1"))
	must(t, s.DeleteMember(bg, "y", "p1")) // idempotent
	if n, _ := s.Size(bg, "y"); n != 0 {
		t.Fatalf("size of y after delete: %d", n)
	}
}

func confMembersPaging(t *testing.T, s Stores) {
	var want []string
	for i := range 7 {
		pid := fmt.Sprintf("p%d", i)
		want = append(want, pid)
		must(t, update(s, pid, join(t0, "a")))
	}
	var got []string
	next := ""
	for pages := 0; ; pages++ {
		ms, nx, err := s.Members(bg, "a", 3, next)
		must(t, err)
		for _, m := range ms {
			got = append(got, m.ProfileID)
		}
		if next = nx; next == "" || pages > 10 {
			break
		}
	}
	eq(t, "paged members", got, want)
	if n, _ := s.Size(bg, "a"); n != 7 {
		t.Fatalf("size %d", n)
	}
	var ve *ValidationError
	if _, _, err := s.Members(bg, "a", 3, "not a token!"); !errors.As(err, &ve) {
		t.Fatalf("bad token: %v", err)
	}
}

func confRegistry(t *testing.T, s Stores) {
	var want []string
	for i := range 40 {
		pid := fmt.Sprintf("p%02d", i)
		want = append(want, pid)
		must(t, update(s, pid, func(*State) {}))
	}
	var got []string
	byShard := map[int][]string{}
	for shard := range regShards {
		next := ""
		for {
			ids, nx, err := s.Profiles(bg, shard, 2, next)
			must(t, err)
			for _, id := range ids {
				if shardOf(id, regShards) != shard {
					t.Fatalf("%s listed in shard %d", id, shard)
				}
			}
			got, byShard[shard] = append(got, ids...), append(byShard[shard], ids...)
			if next = nx; next == "" {
				break
			}
		}
	}
	sort.Strings(got)
	eq(t, "registered profiles", got, want)
	for shard, ids := range byShard {
		if len(ids) < 2 {
			continue
		}
		rest, _, err := s.Profiles(bg, shard, 0, cursorAfter(ids[0]))
		must(t, err)
		eq(t, "after the cursor", rest, ids[1:])
		break
	}
	must(t, update(s, "p00", func(st *State) { st.MergedInto = "p01" }))
	ids, _, err := s.Profiles(bg, shardOf("p00", regShards), 0, "")
	must(t, err)
	if slices.Contains(ids, "p00") {
		t.Fatal("a merged profile is still registered")
	}
}

func due(t *testing.T, s StateStore, pid string, now time.Time) bool {
	t.Helper()
	ids, err := s.Due(bg, shardOf(pid, schedShards), now, 100)
	must(t, err)
	return slices.Contains(ids, pid)
}

func confSchedule(t *testing.T, s Stores) {
	must(t, update(s, "p1", func(st *State) { st.NextAt = t0.Add(90 * time.Second) }))
	for _, c := range []struct {
		at  time.Duration
		due bool
	}{{0, false}, {time.Minute, false}, {119 * time.Second, false}, {2 * time.Minute, true}, {time.Hour, true}} {
		if got := due(t, s, "p1", t0.Add(c.at)); got != c.due {
			t.Fatalf("due at +%v: %v, want %v", c.at, got, c.due)
		}
	}
	for shard := range schedShards {
		ids, err := s.Due(bg, shard, t0.Add(time.Hour), 100)
		must(t, err)
		if shard != shardOf("p1", schedShards) && len(ids) > 0 {
			t.Fatalf("shard %d lists %v", shard, ids)
		}
	}
	must(t, update(s, "p1", func(st *State) { st.NextAt = t0.Add(10 * time.Minute) }))
	if due(t, s, "p1", t0.Add(2*time.Minute)) || !due(t, s, "p1", t0.Add(10*time.Minute)) {
		t.Fatal("a moved schedule entry")
	}
	must(t, update(s, "p1", func(st *State) { st.NextAt = time.Time{} }))
	if due(t, s, "p1", t0.Add(24*time.Hour)) {
		t.Fatal("still scheduled after the next change time was cleared")
	}
	must(t, update(s, "p1", func(st *State) { st.NextAt = t0 }))
	must(t, s.Unschedule(bg, "p1"))
	must(t, s.Unschedule(bg, "p1")) // idempotent
	if due(t, s, "p1", t0.Add(time.Hour)) {
		t.Fatal("still scheduled after Unschedule")
	}
}

func confScheduleOrder(t *testing.T, s Stores) {
	var pids []string
	for i := 0; len(pids) < 4; i++ {
		if pid := fmt.Sprintf("q%d", i); shardOf(pid, schedShards) == 0 {
			pids = append(pids, pid)
		}
	}
	for i, pid := range pids { // the last one first
		must(t, update(s, pid, func(st *State) { st.NextAt = t0.Add(time.Duration(len(pids)-i) * time.Minute) }))
	}
	ids, err := s.Due(bg, 0, t0.Add(time.Hour), 2)
	must(t, err)
	eq(t, "earliest two", ids, []string{pids[3], pids[2]})
}

func confLargeCommit(t *testing.T, s Stores) {
	var auds []string
	for i := range 120 {
		auds = append(auds, fmt.Sprintf("a%03d", i))
	}
	must(t, update(s, "p1", join(t0, auds...)))
	for _, a := range []string{auds[0], auds[60], auds[119]} {
		if n, err := s.Size(bg, a); err != nil || n != 1 {
			t.Fatalf("size of %s: %d %v", a, n, err)
		}
	}
	must(t, update(s, "p1", func(st *State) {
		for _, m := range st.Members {
			m.In = false
		}
	}))
	for _, a := range []string{auds[0], auds[119]} {
		if n, _ := s.Size(bg, a); n != 0 {
			t.Fatalf("size of %s after the exits: %d", a, n)
		}
	}
}

func confConcurrent(t *testing.T, s Stores) {
	const writers, each = 4, 5
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for range each {
				for {
					err := update(s, "p1", func(st *State) { st.acc("v").merge(&Acc{T: &Tally{N: 1}}) })
					if errors.Is(err, ErrConflict) {
						continue
					}
					if err != nil {
						t.Error(err)
					}
					break
				}
			}
		})
	}
	wg.Wait()
	l := load(t, s, "p1")
	if n := l.State.Aggs["v"].T.N; n != writers*each || l.State.Ver != writers*each {
		t.Fatalf("%d events at version %d, want %d: an update was lost", n, l.State.Ver, writers*each)
	}
}
