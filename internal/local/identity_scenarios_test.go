//go:build integration

package local_test

// Identity resolution scenarios (issue 3), each driven through the public endpoints only:
// analytics-go → tracking API → Kinesis → identity stage → Profile API. Each test asserts the
// exact resulting profiles: which identifiers belong together (and which do not), trait values
// and event counts.

import (
	"fmt"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	analytics "github.com/segmentio/analytics-go/v3"
)

const scnWait = 15 * time.Second

// scnFailures collects messages analytics-go could not deliver.
type scnFailures struct {
	mu   sync.Mutex
	errs []string
}

func (f *scnFailures) Success(analytics.Message) {}
func (f *scnFailures) Failure(m analytics.Message, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs = append(f.errs, fmt.Sprintf("%T: %v", m, err))
}

// scnSend delivers msgs with a fresh analytics-go client (batches of batchSize) and returns
// once every request has been answered; an undelivered message fails the test.
func scnSend(t *testing.T, endpoint, writeKey string, batchSize int, msgs ...analytics.Message) {
	t.Helper()
	f := &scnFailures{}
	interval := 20 * time.Millisecond
	if batchSize > 1 {
		interval = time.Minute // one request per batchSize messages; Close flushes the rest
	}
	client, err := analytics.NewWithConfig(writeKey, analytics.Config{
		Endpoint: endpoint, BatchSize: batchSize, Interval: interval, Callback: f,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if err := client.Enqueue(m); err != nil {
			t.Fatalf("enqueue %T: %v", m, err)
		}
	}
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.errs) > 0 {
		t.Fatalf("analytics-go could not deliver: %v", f.errs)
	}
}

// scnAPI reads the Profile API of one stack.
type scnAPI struct {
	t    *testing.T
	base string
	auth string
}

func newScnAPI(t *testing.T, stackURL string) *scnAPI {
	return &scnAPI{t: t, base: stackURL + "/v1/spaces/default/collections/users/profiles/", auth: "Basic " + basicToken(adminToken)}
}

func (a *scnAPI) get(ref, resource string, out any) int {
	a.t.Helper()
	return call(a.t, "GET", a.base+url.PathEscape(ref)+"/"+resource, a.auth, nil, out)
}

type scnMeta struct {
	ID             string   `json:"id"`
	EventCount     int      `json:"event_count"`
	MergedFrom     []string `json:"merged_from"`
	FirstMessageAt string   `json:"first_message_at"`
	LastMessageAt  string   `json:"last_message_at"`
}

// meta returns the metadata of the profile ref resolves to, or ok=false on 404.
func (a *scnAPI) meta(ref string) (scnMeta, bool) {
	a.t.Helper()
	var out struct {
		Metadata scnMeta `json:"metadata"`
	}
	switch st := a.get(ref, "metadata", &out); st {
	case 200:
		return out.Metadata, true
	case 404:
		return scnMeta{}, false
	default:
		a.t.Fatalf("metadata of %s: %d", ref, st)
	}
	return scnMeta{}, false
}

// mustMeta is meta for a profile that must exist.
func (a *scnAPI) mustMeta(ref string) scnMeta {
	a.t.Helper()
	m, ok := a.meta(ref)
	if !ok {
		a.t.Fatalf("no profile for %s", ref)
	}
	return m
}

// externalIDs returns the profile's identifiers as sorted "type:value".
func (a *scnAPI) externalIDs(ref string) []string {
	a.t.Helper()
	var out struct {
		Data []struct{ Type, ID string } `json:"data"`
	}
	if st := a.get(ref, "external_ids?limit=100", &out); st != 200 {
		a.t.Fatalf("external_ids of %s: %d", ref, st)
	}
	ids := []string{}
	for _, d := range out.Data {
		ids = append(ids, d.Type+":"+d.ID)
	}
	sort.Strings(ids)
	return ids
}

// traits returns the profile's traits (the default view: user traits, computed traits and
// audiences; these tests define no computed traits or audiences). It must answer 200 as soon as
// the profile exists, whether or not the segments stage has seen it yet.
func (a *scnAPI) traits(ref string) map[string]any {
	a.t.Helper()
	var out struct {
		Traits map[string]any `json:"traits"`
	}
	if st := a.get(ref, "traits?limit=200", &out); st != 200 {
		a.t.Fatalf("traits of %s: %d", ref, st)
	}
	return out.Traits
}

// events returns the message ids of the profile's timeline, newest first.
func (a *scnAPI) events(ref string) []string {
	a.t.Helper()
	var out struct {
		Data []struct {
			MessageID string `json:"message_id"`
		} `json:"data"`
	}
	if st := a.get(ref, "events?limit=100", &out); st != 200 {
		a.t.Fatalf("events of %s: %d", ref, st)
	}
	ids := []string{}
	for _, d := range out.Data {
		ids = append(ids, d.MessageID)
	}
	return ids
}

type scnAction struct {
	Kind        string `json:"kind"`
	Identifiers []struct {
		Type  string `json:"type"`
		Value string `json:"value"`
	} `json:"identifiers"`
	Profiles []string `json:"profiles"`
	Rule     string   `json:"rule"`
}

type scnLogEntry struct {
	MessageID string      `json:"messageId"`
	ProfileID string      `json:"profileId"`
	Actions   []scnAction `json:"actions"`
}

func (a *scnAPI) merges(ref string) []scnLogEntry {
	a.t.Helper()
	var out struct {
		Data []scnLogEntry `json:"data"`
	}
	if st := a.get(ref, "merges?limit=100", &out); st != 200 {
		a.t.Fatalf("merges of %s: %d", ref, st)
	}
	return out.Data
}

// findAction returns the first action of kind naming identifier typ:value in the log.
func findAction(log []scnLogEntry, kind, typ, value string) (scnLogEntry, scnAction, bool) {
	for _, e := range log {
		for _, ac := range e.Actions {
			if ac.Kind != kind {
				continue
			}
			for _, id := range ac.Identifiers {
				if id.Type == typ && id.Value == value {
					return e, ac, true
				}
			}
		}
	}
	return scnLogEntry{}, scnAction{}, false
}

// settled waits until every ref resolves to one and the same profile holding n events.
func (a *scnAPI) settled(what string, n int, refs ...string) scnMeta {
	a.t.Helper()
	var m scnMeta
	eventually(a.t, what, scnWait, func() bool {
		id := ""
		for _, ref := range refs {
			mm, ok := a.meta(ref)
			if !ok || (id != "" && mm.ID != id) || mm.EventCount != n {
				return false
			}
			id, m = mm.ID, mm
		}
		return true
	})
	return m
}

func sameSet(got, want []string) bool {
	g := append([]string(nil), got...)
	w := append([]string(nil), want...)
	sort.Strings(g)
	sort.Strings(w)
	return reflect.DeepEqual(g, w)
}

func TestScenarioAnonymousBrowsingThenLogin(t *testing.T) {
	stack, _, writeKey := startStack(t)
	api := newScnAPI(t, stack.URL)
	const anon, user = "scn1-anon", "scn1-user"
	now := time.Now().UTC()
	scnSend(t, stack.URL, writeKey, 1,
		analytics.Page{MessageId: "scn1-p1", AnonymousId: anon, Name: "Home", Timestamp: now.Add(-5 * time.Minute)},
		analytics.Page{MessageId: "scn1-p2", AnonymousId: anon, Name: "Pricing", Timestamp: now.Add(-4 * time.Minute)},
		analytics.Identify{MessageId: "scn1-i1", AnonymousId: anon, UserId: user, Timestamp: now.Add(-3 * time.Minute),
			Traits: analytics.NewTraits().SetEmail("Scn1.Login@Example.COM").SetName("Lin")},
		analytics.Track{MessageId: "scn1-t1", UserId: user, Event: "Signed In", Timestamp: now.Add(-2 * time.Minute)},
	)
	refs := []string{"anonymous_id:" + anon, "user_id:" + user, "email:scn1.login@example.com"}
	m := api.settled("one profile with four events by A, U and the email", 4, refs...)

	for _, ref := range refs {
		if got, want := api.externalIDs(ref), []string{"anonymous_id:" + anon, "email:scn1.login@example.com", "user_id:" + user}; !reflect.DeepEqual(got, want) {
			t.Fatalf("external ids of %s: %v, want %v", ref, got, want)
		}
		if got, want := api.events(ref), []string{"scn1-t1", "scn1-i1", "scn1-p2", "scn1-p1"}; !reflect.DeepEqual(got, want) {
			t.Fatalf("events of %s (newest first): %v, want %v", ref, got, want)
		}
	}
	if got, want := api.traits("user_id:"+user), map[string]any{"email": "Scn1.Login@Example.COM", "name": "Lin"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("traits: %v, want %v", got, want)
	}
	// The email lookup is case-insensitive (emails are lower-cased identifiers).
	if mm := api.mustMeta("email:SCN1.Login@example.com"); mm.ID != m.ID {
		t.Fatalf("upper-case email lookup reads %s, want %s", mm.ID, m.ID)
	}
}

func TestScenarioTwoDevicesJoinedByEmail(t *testing.T) {
	stack, _, writeKey := startStack(t)
	api := newScnAPI(t, stack.URL)
	const a1, a2, email = "scn2-device-1", "scn2-device-2", "scn2.person@example.com"
	now := time.Now().UTC()
	scnSend(t, stack.URL, writeKey, 1,
		analytics.Page{MessageId: "scn2-d1-p", AnonymousId: a1, Name: "Home", Timestamp: now.Add(-6 * time.Minute)},
		analytics.Identify{MessageId: "scn2-d1-i", AnonymousId: a1, Timestamp: now.Add(-5 * time.Minute),
			Traits: analytics.NewTraits().SetEmail(email)},
		analytics.Page{MessageId: "scn2-d2-p", AnonymousId: a2, Name: "Blog", Timestamp: now.Add(-4 * time.Minute)},
		analytics.Identify{MessageId: "scn2-d2-i", AnonymousId: a2, Timestamp: now.Add(-3 * time.Minute),
			Traits: analytics.NewTraits().SetEmail(email).Set("newsletter", true)},
	)
	refs := []string{"anonymous_id:" + a1, "anonymous_id:" + a2, "email:" + email}
	m := api.settled("one profile by A1, A2 and E with four events", 4, refs...)

	for _, ref := range refs {
		if got, want := api.externalIDs(ref), []string{"anonymous_id:" + a1, "anonymous_id:" + a2, "email:" + email}; !reflect.DeepEqual(got, want) {
			t.Fatalf("external ids of %s: %v, want %v", ref, got, want)
		}
	}
	if got, want := api.events("email:"+email), []string{"scn2-d2-i", "scn2-d2-p", "scn2-d1-i", "scn2-d1-p"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("events (newest first): %v, want %v", got, want)
	}
	if got, want := api.traits("email:"+email), map[string]any{"email": email, "newsletter": true}; !reflect.DeepEqual(got, want) {
		t.Fatalf("traits: %v, want %v", got, want)
	}
	// Whatever the processing order, the profiles of both devices are now one.
	for _, from := range m.MergedFrom {
		if mm := api.mustMeta("profile_id:" + from); mm.ID != m.ID {
			t.Fatalf("merged-away profile %s reads %s, want the survivor %s", from, mm.ID, m.ID)
		}
	}
}

func TestScenarioSharedDeviceTwoUsers(t *testing.T) {
	stack, _, writeKey := startStack(t)
	api := newScnAPI(t, stack.URL)
	const anon, u1, u2 = "scn3-shared-tablet", "scn3-alice", "scn3-bob"
	now := time.Now().UTC()

	// Alice browses and logs in on the family tablet.
	scnSend(t, stack.URL, writeKey, 1,
		analytics.Page{MessageId: "scn3-p1", AnonymousId: anon, Name: "Home", Timestamp: now.Add(-10 * time.Minute)},
		analytics.Identify{MessageId: "scn3-i1", AnonymousId: anon, UserId: u1, Timestamp: now.Add(-9 * time.Minute),
			Traits: analytics.NewTraits().SetEmail("alice@scn3.example").SetName("Alice")},
	)
	alice := api.settled("Alice's profile by user id and the tablet's anonymous id", 2, "user_id:"+u1, "anonymous_id:"+anon)

	// Then Bob logs in on the same tablet: same anonymousId, another userId.
	scnSend(t, stack.URL, writeKey, 1,
		analytics.Identify{MessageId: "scn3-i2", AnonymousId: anon, UserId: u2, Timestamp: now.Add(-5 * time.Minute),
			Traits: analytics.NewTraits().SetEmail("bob@scn3.example").SetName("Bob")},
		analytics.Track{MessageId: "scn3-t2", UserId: u2, Event: "Song Played", Timestamp: now.Add(-4 * time.Minute)},
	)
	bob := api.settled("Bob's profile", 2, "user_id:"+u2)

	if bob.ID == alice.ID {
		t.Fatalf("Alice and Bob share profile %s", bob.ID)
	}
	if m := api.mustMeta("user_id:" + u1); m.ID != alice.ID || m.EventCount != 2 || len(m.MergedFrom) != 0 {
		t.Fatalf("Alice's profile changed: %+v (was %s)", m, alice.ID)
	}
	if m := api.mustMeta("anonymous_id:" + anon); m.ID != alice.ID {
		t.Fatalf("the tablet's anonymous id moved to %s, want Alice's %s", m.ID, alice.ID)
	}
	if got, want := api.externalIDs("user_id:"+u1), []string{"anonymous_id:" + anon, "email:alice@scn3.example", "user_id:" + u1}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Alice's external ids: %v, want %v", got, want)
	}
	if got, want := api.externalIDs("user_id:"+u2), []string{"email:bob@scn3.example", "user_id:" + u2}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Bob's external ids: %v, want %v", got, want)
	}
	if got, want := api.events("user_id:"+u1), []string{"scn3-i1", "scn3-p1"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Alice's events: %v, want %v", got, want)
	}
	if got, want := api.events("user_id:"+u2), []string{"scn3-t2", "scn3-i2"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Bob's events: %v, want %v", got, want)
	}
	if got, want := api.traits("user_id:"+u1), map[string]any{"email": "alice@scn3.example", "name": "Alice"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Alice's traits: %v, want %v", got, want)
	}
	if got, want := api.traits("user_id:"+u2), map[string]any{"email": "bob@scn3.example", "name": "Bob"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Bob's traits: %v, want %v", got, want)
	}

	// Bob's merge log explains the refused merge: the tablet's anonymous id was dropped
	// because the union would hold two user_ids, in conflict with Alice's profile.
	log := api.merges("user_id:" + u2)
	entry, drop, ok := findAction(log, "drop", "anonymous_id", anon)
	if !ok {
		t.Fatalf("Bob's merge log has no drop of anonymous_id:%s: %+v", anon, log)
	}
	if entry.MessageID != "scn3-i2" || entry.ProfileID != bob.ID {
		t.Fatalf("drop logged for message %q on profile %q, want scn3-i2 on %s", entry.MessageID, entry.ProfileID, bob.ID)
	}
	if !strings.Contains(drop.Rule, "user_id") {
		t.Fatalf("drop rule %q does not name user_id", drop.Rule)
	}
	// The conflicting profiles are Alice's, and Bob's own if his track was resolved first.
	if !sameSet(drop.Profiles, []string{alice.ID}) && !sameSet(drop.Profiles, []string{alice.ID, bob.ID}) {
		t.Fatalf("drop names conflicting profiles %v, want Alice's %s (and maybe Bob's %s)", drop.Profiles, alice.ID, bob.ID)
	}
	if _, _, ok := findAction(log, "merge", "anonymous_id", anon); ok {
		t.Fatalf("Bob's merge log records a merge via the shared anonymous id: %+v", log)
	}
	if _, _, ok := findAction(api.merges("user_id:"+u1), "drop", "anonymous_id", anon); ok {
		t.Fatal("the drop is logged on Alice's profile too")
	}
}

func TestScenarioBlockedValues(t *testing.T) {
	stack, _, writeKey := startStack(t)
	api := newScnAPI(t, stack.URL)
	const u1, u2 = "u-blocked-test", "u-blocked-test-2"
	const a3, a4 = "scn4-anon-3", "scn4-anon-4"
	now := time.Now().UTC()
	blockedTraits := func() analytics.Traits { return analytics.NewTraits().SetEmail("null").SetPhone("000-0000") }
	scnSend(t, stack.URL, writeKey, 1,
		// Two users whose SDKs send placeholder values for the anonymous id, email and phone.
		analytics.Identify{MessageId: "scn4-i1", UserId: u1, AnonymousId: "undefined", Timestamp: now.Add(-5 * time.Minute), Traits: blockedTraits()},
		analytics.Identify{MessageId: "scn4-i2", UserId: u2, AnonymousId: "undefined", Timestamp: now.Add(-4 * time.Minute), Traits: blockedTraits()},
		analytics.Track{MessageId: "scn4-t2", UserId: u2, AnonymousId: "anonymous", Event: "Clicked", Timestamp: now.Add(-3 * time.Minute)},
		// Two visitors whose app sends the placeholder user id "0".
		analytics.Identify{MessageId: "scn4-i3", UserId: "0", AnonymousId: a3, Timestamp: now.Add(-5 * time.Minute)},
		analytics.Identify{MessageId: "scn4-i4", UserId: "0", AnonymousId: a4, Timestamp: now.Add(-4 * time.Minute)},
	)
	p1 := api.settled("the first user's profile", 1, "user_id:"+u1)
	p2 := api.settled("the second user's profile", 2, "user_id:"+u2)
	p3 := api.settled("the third visitor's profile", 1, "anonymous_id:"+a3)
	p4 := api.settled("the fourth visitor's profile", 1, "anonymous_id:"+a4)
	seen := map[string]string{}
	for name, p := range map[string]scnMeta{"u1": p1, "u2": p2, "a3": p3, "a4": p4} {
		if other, dup := seen[p.ID]; dup {
			t.Fatalf("%s and %s share profile %s through a blocked value", name, other, p.ID)
		}
		seen[p.ID] = name
	}
	for ref, want := range map[string][]string{
		"user_id:" + u1:      {"user_id:" + u1},
		"user_id:" + u2:      {"user_id:" + u2},
		"anonymous_id:" + a3: {"anonymous_id:" + a3},
		"anonymous_id:" + a4: {"anonymous_id:" + a4},
	} {
		if got := api.externalIDs(ref); !reflect.DeepEqual(got, want) {
			t.Fatalf("external ids of %s: %v, want %v (blocked values must not be identifiers)", ref, got, want)
		}
	}
	for _, ref := range []string{"anonymous_id:undefined", "anonymous_id:anonymous", "email:null", "phone:000-0000", "user_id:0"} {
		if m, ok := api.meta(ref); ok {
			t.Fatalf("blocked value %s finds profile %s", ref, m.ID)
		}
	}
	// The merge log says which values were ignored and by which rule.
	log1 := api.merges("user_id:" + u1)
	for _, id := range [][2]string{{"anonymous_id", "undefined"}, {"email", "null"}, {"phone", "000-0000"}} {
		e, ac, ok := findAction(log1, "blocked", id[0], id[1])
		if !ok || e.MessageID != "scn4-i1" || ac.Rule == "" {
			t.Fatalf("merge log of %s lacks a blocked %s:%s for scn4-i1: %+v", u1, id[0], id[1], log1)
		}
	}
	if _, _, ok := findAction(api.merges("anonymous_id:"+a3), "blocked", "user_id", "0"); !ok {
		t.Fatalf("merge log of %s lacks the blocked user_id:0", a3)
	}
}

func TestScenarioAlias(t *testing.T) {
	stack, _, writeKey := startStack(t)
	api := newScnAPI(t, stack.URL)
	const anon, user = "scn5-anon", "scn5-user"
	now := time.Now().UTC()
	// Anonymous visits on the web, and the same person already known by user id from the app.
	scnSend(t, stack.URL, writeKey, 1,
		analytics.Page{MessageId: "scn5-p1", AnonymousId: anon, Name: "Home", Timestamp: now.Add(-10 * time.Minute)},
		analytics.Page{MessageId: "scn5-p2", AnonymousId: anon, Name: "Pricing", Timestamp: now.Add(-9 * time.Minute)},
		analytics.Track{MessageId: "scn5-t1", UserId: user, Event: "App Opened", Timestamp: now.Add(-8 * time.Minute)},
	)
	anonP := api.settled("the anonymous profile", 2, "anonymous_id:"+anon)
	userP := api.settled("the user's profile", 1, "user_id:"+user)
	if anonP.ID == userP.ID {
		t.Fatalf("anonymous and user profile are one (%s) before the alias", anonP.ID)
	}
	scnSend(t, stack.URL, writeKey, 1,
		analytics.Alias{MessageId: "scn5-al", PreviousId: anon, UserId: user, Timestamp: now.Add(-7 * time.Minute)},
	)
	m := api.settled("one profile by A and U with every event", 4, "anonymous_id:"+anon, "user_id:"+user)

	if m.ID != userP.ID {
		t.Fatalf("survivor %s, want the userId's profile %s (alias merges previousId into userId)", m.ID, userP.ID)
	}
	if !sameSet(m.MergedFrom, []string{anonP.ID}) {
		t.Fatalf("merged_from %v, want [%s]", m.MergedFrom, anonP.ID)
	}
	if mm := api.mustMeta("profile_id:" + anonP.ID); mm.ID != userP.ID {
		t.Fatalf("the merged-away profile reads %s, want %s", mm.ID, userP.ID)
	}
	if got, want := api.externalIDs("user_id:"+user), []string{"anonymous_id:" + anon, "user_id:" + user}; !reflect.DeepEqual(got, want) {
		t.Fatalf("external ids: %v, want %v", got, want)
	}
	if got, want := api.events("anonymous_id:"+anon), []string{"scn5-al", "scn5-t1", "scn5-p2", "scn5-p1"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("events (newest first): %v, want %v", got, want)
	}
	log := api.merges("user_id:" + user)
	found := false
	for _, e := range log {
		for _, ac := range e.Actions {
			if ac.Kind == "merge" && e.MessageID == "scn5-al" && sameSet(ac.Profiles, []string{anonP.ID, userP.ID}) {
				found = true
			}
		}
	}
	if !found {
		t.Fatalf("merge log lacks the alias merge of %s into %s: %+v", anonP.ID, userP.ID, log)
	}
}

func TestScenarioOutOfOrderEvents(t *testing.T) {
	stack, _, writeKey := startStack(t)
	api := newScnAPI(t, stack.URL)
	const user, userB = "scn6-user", "scn6-user-b"
	t2 := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond) // later
	t1 := t2.Add(-time.Hour)                                          // earlier

	// In separate deliveries: the newer identify is processed first, the older one arrives late.
	scnSend(t, stack.URL, writeKey, 1, analytics.Identify{MessageId: "scn6-new", UserId: user, Timestamp: t2,
		Traits: analytics.NewTraits().Set("plan", "new")})
	api.settled("the newer identify", 1, "user_id:"+user)
	scnSend(t, stack.URL, writeKey, 1, analytics.Identify{MessageId: "scn6-old", UserId: user, Timestamp: t1,
		Traits: analytics.NewTraits().Set("plan", "old").Set("company", "Initech")})
	// In one batch: newer first, older second, coalesced into one write.
	scnSend(t, stack.URL, writeKey, 2,
		analytics.Identify{MessageId: "scn6-b-new", UserId: userB, Timestamp: t2, Traits: analytics.NewTraits().Set("plan", "new")},
		analytics.Identify{MessageId: "scn6-b-old", UserId: userB, Timestamp: t1, Traits: analytics.NewTraits().Set("plan", "old").Set("company", "Initech")},
	)

	for _, u := range []string{user, userB} {
		m := api.settled("both identifies of "+u, 2, "user_id:"+u)
		// plan keeps the newer value; company, set only by the older event, is kept.
		if got, want := api.traits("user_id:"+u), map[string]any{"plan": "new", "company": "Initech"}; !reflect.DeepEqual(got, want) {
			t.Fatalf("%s traits: %v, want %v", u, got, want)
		}
		prefix := "scn6-"
		if u == userB {
			prefix = "scn6-b-"
		}
		if got, want := api.events("user_id:"+u), []string{prefix + "new", prefix + "old"}; !reflect.DeepEqual(got, want) {
			t.Fatalf("%s events (newest first): %v, want %v", u, got, want)
		}
		first, err1 := time.Parse(time.RFC3339Nano, m.FirstMessageAt)
		last, err2 := time.Parse(time.RFC3339Nano, m.LastMessageAt)
		if err1 != nil || err2 != nil || first.Sub(t1).Abs() > 5*time.Second || last.Sub(t2).Abs() > 5*time.Second {
			t.Fatalf("%s first/last message at %q/%q, want about %v/%v", u, m.FirstMessageAt, m.LastMessageAt, t1, t2)
		}
	}
}

func TestScenarioBatchDeliveredTwice(t *testing.T) {
	stack, _, writeKey := startStack(t)
	api := newScnAPI(t, stack.URL)
	const user, n = "scn7-user", 5
	ts := time.Now().UTC().Add(-30 * time.Minute).Truncate(time.Millisecond)
	var batch []analytics.Message
	var want []string
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("scn7-m%d", i)
		batch = append(batch, analytics.Track{MessageId: id, UserId: user, Event: "Item Viewed", Timestamp: ts.Add(time.Duration(i) * time.Second),
			Properties: analytics.NewProperties().Set("n", i)})
		want = append([]string{id}, want...) // newest first
	}
	scnSend(t, stack.URL, writeKey, n, batch...) // one request of n events
	scnSend(t, stack.URL, writeKey, n, batch...) // a second client delivers the same request again
	// The sentinel follows the duplicates on the same shard (same userId), so once it is on the
	// profile, the duplicates have been processed.
	scnSend(t, stack.URL, writeKey, 1, analytics.Track{MessageId: "scn7-sentinel", UserId: user, Event: "Done", Timestamp: ts.Add(time.Minute)})
	want = append([]string{"scn7-sentinel"}, want...)

	eventually(t, "the sentinel on the profile", scnWait, func() bool {
		evs := []string{}
		if _, ok := api.meta("user_id:" + user); ok {
			evs = api.events("user_id:" + user)
		}
		return len(evs) > 0 && evs[0] == "scn7-sentinel"
	})
	m := api.mustMeta("user_id:" + user)
	if m.EventCount != n+1 {
		t.Fatalf("event_count %d, want %d (each message once)", m.EventCount, n+1)
	}
	if got := api.events("user_id:" + user); !reflect.DeepEqual(got, want) {
		t.Fatalf("events: %v, want %v", got, want)
	}
	if got, want := api.externalIDs("user_id:"+user), []string{"user_id:" + user}; !reflect.DeepEqual(got, want) {
		t.Fatalf("external ids: %v, want %v", got, want)
	}
}
