package segment

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/activations"
	"github.com/serverless-cdp/cdp/internal/consent"
)

// kindCounts counts exported items by kind.
func kindCounts(items []PersonalItem) map[string]int {
	n := map[string]int{}
	for _, it := range items {
		n[it.Kind]++
	}
	return n
}

func profileData(t *testing.T, s Stores, pid string, auds ...string) []PersonalItem {
	t.Helper()
	items, err := s.ProfileData(bg, pid, auds)
	must(t, err)
	return items
}

// confPersonalData: ProfileData finds the state (with its outbox), memberships (of defined
// audiences and of those the state names), the schedule and registry entries; EraseProfile
// erases the same kinds and counts, and then nothing is found; erasing again erases nothing.
func confPersonalData(t *testing.T, s Stores) {
	must(t, update(s, "p1", func(st *State) {
		join(t0, "x", "y")(st)
		st.NextAt, st.Email = t0.Add(time.Hour), "ann@example.com"
		st.Consent = &consent.Profile{Categories: map[string]consent.Category{"ads": {Granted: true, At: t0}}}
	}, activations.Record{ID: "aud-p1-x-1", Kind: activations.KindAudienceEntered, ProfileID: "p1", Email: "ann@example.com"}))
	must(t, update(s, "p2", join(t0, "x"))) // another profile: untouched
	items := profileData(t, s, "p1", "x")   // y: found through the state
	want := map[string]int{KindProfileState: 1, KindMemberships: 2, KindSchedule: 1, KindRegistration: 1}
	if got := kindCounts(items); !maps.Equal(got, want) {
		t.Fatalf("profile data kinds: %v, want %v", got, want)
	}
	js, _ := json.Marshal(items)
	for _, w := range []string{"ann@example.com", `"ads"`, "aud-p1-x-1"} {
		if !strings.Contains(string(js), w) {
			t.Fatalf("export lacks %s: %s", w, js)
		}
	}
	n, err := s.EraseProfile(bg, "p1", []string{"x"}, t0.Add(TombstoneTTL))
	must(t, err)
	if !maps.Equal(n, want) {
		t.Fatalf("erased %v, exported %v", n, want)
	}
	if left := profileData(t, s, "p1", "x", "y"); len(left) != 0 {
		t.Fatalf("after erase: %+v", left)
	}
	if n, err := s.EraseProfile(bg, "p1", []string{"x", "y"}, t0.Add(TombstoneTTL)); err != nil || len(n) != 0 {
		t.Fatalf("second erase: %v %v", n, err)
	}
	ms, _, err := s.Members(bg, "x", 10, "")
	must(t, err)
	if len(ms) != 1 || ms[0].ProfileID != "p2" || due(t, s, "p1", t0.Add(2*time.Hour)) {
		t.Fatalf("after erase: members of x %+v, p1 still due %v", ms, due(t, s, "p1", t0.Add(2*time.Hour)))
	}
	for shard := range regShards {
		ids, _, err := s.Profiles(bg, shard, 100, "")
		must(t, err)
		if slices.Contains(ids, "p1") {
			t.Fatal("p1 still registered")
		}
	}
	if got := kindCounts(profileData(t, s, "p2", "x")); got[KindProfileState] != 1 || got[KindMemberships] != 1 {
		t.Fatalf("p2 data: %v", got)
	}
}

// confTombstone: the tombstone holds no personal data and a higher version, so a commit based
// on the state read before the erasure fails, and so does creating the state of a profile
// erased before it had any.
func confTombstone(t *testing.T, s Stores) {
	must(t, update(s, "p1", func(st *State) { st.Email = "ann@example.com" }))
	before := load(t, s, "p1")
	_, err := s.EraseProfile(bg, "p1", nil, t0.Add(TombstoneTTL))
	must(t, err)
	l := load(t, s, "p1")
	if l.State == nil || !l.State.Erased || l.State.Ver != before.State.Ver+1 || l.State.Email != "" || len(l.Outbox) != 0 {
		t.Fatalf("tombstone: %+v", l.State)
	}
	before.State.Email = "ann@example.org"
	wantErr(t, "commit from the state before the erasure",
		s.Commit(bg, []Write{{State: before.State, Was: before}}, MaxStateBytes), ErrConflict)

	_, err = s.EraseProfile(bg, "p9", nil, t0.Add(TombstoneTTL)) // never stored
	must(t, err)
	fresh := NewSnapshot(nil, nil)
	wantErr(t, "creating an erased profile's state",
		s.Commit(bg, []Write{{State: NewState("p9"), Was: fresh}}, MaxStateBytes), ErrConflict)
	if l := load(t, s, "p9"); l.State == nil || !l.State.Erased {
		t.Fatalf("p9: %+v", l.State)
	}
}

func confDropped(t *testing.T, s Stores) {
	if n, err := s.Dropped(bg); err != nil || n != 0 {
		t.Fatalf("dropped at start: %d %v", n, err)
	}
	must(t, s.AddDropped(bg, 2))
	must(t, s.AddDropped(bg, 1))
	if n, err := s.Dropped(bg); err != nil || n != 3 {
		t.Fatalf("dropped: %d %v", n, err)
	}
}
