package identity

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/serverless-cdp/cdp/internal/tracking"
)

type f = map[string]string

func TestScenarioAnonymousThenLogin(t *testing.T) { eachBackend(t, testScenarioAnonymousThenLogin) }

func testScenarioAnonymousThenLogin(t *testing.T, b backend) {
	e := b.newEnv(t, nil)
	e.process(t,
		rec("page", "m1", 0, f{"aid": "a1"}),
		rec("track", "m2", 1, f{"aid": "a1", "event": "Viewed"}),
	)
	wantShape(t, e, "anonymous_id:a1")
	e.process(t,
		rec("identify", "m3", 2, f{"uid": "u1", "aid": "a1", "traits": `{"email":" Ann@Example.COM ","name":"Ann"}`}),
		rec("track", "m4", 3, f{"uid": "u1", "event": "Bought"}),
	)
	wantShape(t, e, "anonymous_id:a1 email:ann@example.com user_id:u1")
	p := e.byID(t, "anonymous_id:a1")
	if p.EventCount != 4 || traitsJSON(p) != `{"email":" Ann@Example.COM ","name":"Ann"}` {
		t.Fatalf("profile: count %d traits %s", p.EventCount, traitsJSON(p))
	}
	if !p.FirstMessageAt.Equal(t0) || !p.LastMessageAt.Equal(t0.Add(3*60e9)) {
		t.Fatalf("first/last %v %v", p.FirstMessageAt, p.LastMessageAt)
	}
	evs, _, err := e.store.Events(context.Background(), p, Page{Limit: 10})
	if err != nil || len(evs) != 4 || evs[0].Message.MessageID != "m4" || evs[3].Message.MessageID != "m1" {
		t.Fatalf("events %v %v", evs, err)
	}
}

func TestScenarioTwoDevicesJoinedByEmail(t *testing.T) {
	eachBackend(t, testScenarioTwoDevicesJoinedByEmail)
}

func testScenarioTwoDevicesJoinedByEmail(t *testing.T, b backend) {
	e := b.newEnv(t, nil)
	e.process(t,
		rec("page", "m1", 0, f{"aid": "phone-a", "ctx": `{"device":{"id":"dev-1"}}`}),
		rec("page", "m2", 1, f{"aid": "laptop-b"}),
	)
	wantShape(t, e, "anonymous_id:laptop-b", "anonymous_id:phone-a device_id:dev-1")
	// Separate batches: newsletter sign-up on each device with the same e-mail.
	e.process(t, rec("identify", "m3", 2, f{"aid": "phone-a", "traits": `{"email":"bo@x.io"}`}))
	e.process(t, rec("track", "m4", 3, f{"aid": "laptop-b", "event": "Signed Up", "ctx": `{"traits":{"email":"BO@x.io"}}`}))
	wantShape(t, e, "anonymous_id:laptop-b anonymous_id:phone-a device_id:dev-1 email:bo@x.io")
	p := e.byID(t, "anonymous_id:laptop-b")
	if p.EventCount != 4 || len(p.MergedFrom) != 1 {
		t.Fatalf("count %d mergedFrom %v", p.EventCount, p.MergedFrom)
	}
	// The merged-away profile's id still reads through to the survivor, with all events.
	old, err := e.store.Profile(context.Background(), p.MergedFrom[0])
	if err != nil || old.ID != p.ID {
		t.Fatalf("merged id reads %v %v", old, err)
	}
	evs, _, _ := e.store.Events(context.Background(), p, Page{Limit: 10})
	if len(evs) != 4 {
		t.Fatalf("timeline has %d events", len(evs))
	}
	logs, _, _ := e.store.MergeLog(context.Background(), p, Page{Limit: 10})
	if !hasAction(logs, "m4", ActionMerge) {
		t.Fatalf("merge log lacks the merge: %+v", logs)
	}
}

func TestScenarioSharedDeviceTwoUsers(t *testing.T) { eachBackend(t, testScenarioSharedDeviceTwoUsers) }

func testScenarioSharedDeviceTwoUsers(t *testing.T, b backend) {
	e := b.newEnv(t, nil)
	e.process(t,
		rec("page", "m1", 0, f{"aid": "kiosk"}),
		rec("identify", "m2", 1, f{"uid": "alice", "aid": "kiosk", "traits": `{"name":"Alice"}`}),
	)
	e.process(t,
		rec("identify", "m3", 2, f{"uid": "bob", "aid": "kiosk", "traits": `{"name":"Bob"}`}),
		rec("track", "m4", 3, f{"uid": "bob", "aid": "kiosk", "event": "Bought"}),
	)
	wantShape(t, e, "anonymous_id:kiosk user_id:alice", "user_id:bob")
	bob := e.byID(t, "user_id:bob")
	alice := e.byID(t, "user_id:alice")
	if traitsJSON(bob) != `{"name":"Bob"}` || traitsJSON(alice) != `{"name":"Alice"}` || bob.EventCount != 2 || alice.EventCount != 2 {
		t.Fatalf("bob %s %d alice %s %d", traitsJSON(bob), bob.EventCount, traitsJSON(alice), alice.EventCount)
	}
	logs, _, _ := e.store.MergeLog(context.Background(), bob, Page{Limit: 10})
	var why *Action
	for _, l := range logs {
		for i, a := range l.Actions {
			if l.MessageID == "m3" && a.Kind == ActionDrop {
				why = &l.Actions[i]
			}
		}
	}
	if why == nil || why.Rule != "limit user_id=1" || why.Identifiers[0].String() != "anonymous_id:kiosk" || len(why.Profiles) != 1 || why.Profiles[0] != alice.ID {
		t.Fatalf("merge log does not explain the refused merge: %+v", logs)
	}
}

func TestScenarioBlockedValues(t *testing.T) { eachBackend(t, testScenarioBlockedValues) }

func testScenarioBlockedValues(t *testing.T, b backend) {
	rules, err := Compile(Rules{Types: []TypeRule{{Type: TypeEmail, Priority: 2, Limit: 5, Blocked: []BlockedValue{{Match: "regex", Value: `@test\.com$`}}}}})
	if err != nil {
		t.Fatal(err)
	}
	e := b.newEnv(t, rules)
	res := e.process(t,
		rec("identify", "m1", 0, f{"uid": "u1", "aid": "a1", "traits": `{"email":"qa@test.com"}`}),
		rec("identify", "m2", 1, f{"uid": "u2", "aid": "null", "traits": `{"email":"qa@test.com"}`}),
		rec("identify", "m3", 2, f{"uid": "0000", "aid": "undefined"}),
		rec("track", "m4", 3, f{"uid": "u3", "aid": "-1", "event": "x", "ctx": `{"device":{"id":"00000000-0000-0000-0000-000000000000"}}`}),
	)
	wantShape(t, e, "anonymous_id:a1 user_id:u1", "user_id:u2", "user_id:u3")
	if res[2].Outcome != Unresolvable {
		t.Fatalf("all-blocked record: %v", res[2].Outcome)
	}
	logs, _, _ := e.store.MergeLog(context.Background(), e.byID(t, "user_id:u1"), Page{Limit: 10})
	if !hasAction(logs, "m1", ActionBlocked) {
		t.Fatalf("blocked identifier not logged: %+v", logs)
	}
}

func TestScenarioAlias(t *testing.T) { eachBackend(t, testScenarioAlias) }

func testScenarioAlias(t *testing.T, b backend) {
	e := b.newEnv(t, nil)
	e.process(t,
		rec("identify", "m1", 0, f{"aid": "anon-9", "traits": `{"plan":"free"}`}),
		rec("identify", "m2", 1, f{"uid": "new-id", "traits": `{"name":"Cy"}`}),
	)
	wantShape(t, e, "anonymous_id:anon-9", "user_id:new-id")
	survivorBefore := e.byID(t, "user_id:new-id").ID
	e.process(t, rec("alias", "m3", 2, f{"uid": "new-id", "prev": "anon-9"}))
	wantShape(t, e, "anonymous_id:anon-9 user_id:new-id")
	p := e.byID(t, "anonymous_id:anon-9")
	if p.ID != survivorBefore || traitsJSON(p) != `{"name":"Cy","plan":"free"}` || p.EventCount != 3 {
		t.Fatalf("alias survivor %s (want %s) traits %s count %d", p.ID, survivorBefore, traitsJSON(p), p.EventCount)
	}
	// Aliasing two known user ids would break the user_id limit: no merge.
	e.process(t, rec("identify", "m4", 3, f{"uid": "other"}), rec("alias", "m5", 4, f{"uid": "new-id", "prev": "other"}))
	wantShape(t, e, "anonymous_id:anon-9 user_id:new-id", "user_id:other")
}

func TestScenarioOutOfOrderTraits(t *testing.T) { eachBackend(t, testScenarioOutOfOrderTraits) }

func testScenarioOutOfOrderTraits(t *testing.T, b backend) {
	e := b.newEnv(t, nil)
	// The newer identify arrives first, in an earlier batch; the older one must not win.
	e.process(t, rec("identify", "new", 10, f{"uid": "u1", "traits": `{"plan":"pro","city":"Oslo"}`}))
	e.process(t, rec("identify", "old", 5, f{"uid": "u1", "traits": `{"plan":"free","age":30}`}))
	p := e.byID(t, "user_id:u1")
	if traitsJSON(p) != `{"age":30,"city":"Oslo","plan":"pro"}` {
		t.Fatalf("traits %s", traitsJSON(p))
	}
	if !p.FirstMessageAt.Equal(t0.Add(5*60e9)) || !p.LastMessageAt.Equal(t0.Add(10*60e9)) {
		t.Fatalf("first/last %v %v", p.FirstMessageAt, p.LastMessageAt)
	}
	// Out of order within one batch, and across a merge: a merged profile's older trait loses too.
	e.process(t,
		rec("identify", "a2", 20, f{"aid": "x", "traits": `{"plan":"enterprise"}`}),
		rec("identify", "a1", 1, f{"aid": "y", "traits": `{"plan":"trial"}`}),
		rec("track", "a3", 21, f{"uid": "u1", "aid": "y", "event": "e"}),
	)
	p = e.byID(t, "user_id:u1")
	if traitsJSON(p) != `{"age":30,"city":"Oslo","plan":"pro"}` {
		t.Fatalf("after merge: traits %s", traitsJSON(p))
	}
	q := e.byID(t, "anonymous_id:x")
	if traitsJSON(q) != `{"plan":"enterprise"}` {
		t.Fatalf("x traits %s", traitsJSON(q))
	}
}

func TestScenarioBatchDeliveredTwice(t *testing.T) { eachBackend(t, testScenarioBatchDeliveredTwice) }

func testScenarioBatchDeliveredTwice(t *testing.T, b backend) {
	e := b.newEnv(t, nil)
	batch := []tracking.Record{
		rec("page", "m1", 0, f{"aid": "a"}),
		rec("identify", "m2", 1, f{"uid": "u", "aid": "a", "traits": `{"n":1}`}),
		rec("page", "m3", 2, f{"aid": "b", "ctx": `{"traits":{"email":"z@z.z"}}`}),
		rec("track", "m4", 3, f{"uid": "u", "event": "E", "ctx": `{"traits":{"email":"z@z.z"}}`}),
		rec("track", "m4", 3, f{"uid": "u", "event": "E"}), // duplicate inside the batch
	}
	res1, ch1, err := e.proc.Process(context.Background(), batch)
	if err != nil {
		t.Fatal(err)
	}
	if res1[4].Outcome != Duplicate || len(ch1) != 1 || len(ch1[0].Events) != 4 {
		t.Fatalf("first delivery: %+v changes %+v", res1, ch1)
	}
	before := e.liveProfiles(t)
	res2, ch2, err := e.proc.Process(context.Background(), batch)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res2 {
		if r.Outcome != Duplicate {
			t.Fatalf("second delivery record %d: %v", i, r.Outcome)
		}
	}
	after := e.liveProfiles(t)
	if len(before) != 1 || len(after) != 1 || after[0].EventCount != 4 || after[0].Version != before[0].Version {
		t.Fatalf("before %+v after %+v", before[0], after[0])
	}
	// Nothing changed, but the events are re-emitted (a retry may follow a lost publish) with
	// the profile's state as stored: one record, no changed traits or identifiers.
	if len(ch2) != 1 || ch2[0].ProfileID != after[0].ID || ch2[0].Version != after[0].Version || ch2[0].Created ||
		len(ch2[0].MergedFrom) != 0 || len(ch2[0].ChangedTraits) != 0 || len(ch2[0].AddedIdentifiers) != 0 ||
		len(ch2[0].Identifiers) != 4 || string(ch2[0].Traits["n"]) != "1" || len(ch2[0].Events) != 4 {
		t.Fatalf("second delivery changes: %+v", ch2)
	}
	for i, ev := range ch2[0].Events {
		if want := "m" + itoa(i+1); ev.MessageID != want || !ev.Timestamp.Equal(batch[i].Message.Timestamp) {
			t.Fatalf("re-emitted event %d: %+v", i, ev)
		}
	}
	wantShape(t, e, "anonymous_id:a anonymous_id:b email:z@z.z user_id:u")
}

func hasAction(logs []LogEntry, mid, kind string) bool {
	for _, l := range logs {
		for _, a := range l.Actions {
			if l.MessageID == mid && a.Kind == kind {
				return true
			}
		}
	}
	return false
}

var _ = strings.Contains

func TestLargeBatchForOneProfileCommitsInRounds(t *testing.T) {
	eachBackend(t, testLargeBatchForOneProfileCommitsInRounds)
}

func testLargeBatchForOneProfileCommitsInRounds(t *testing.T, b backend) {
	e := b.newEnv(t, nil)
	var batch []tracking.Record
	for i := 0; i < 250; i++ {
		batch = append(batch, rec("track", "big-"+strings.Repeat("0", 3-len(itoa(i)))+itoa(i), i, f{"uid": "heavy", "aid": "a-" + itoa(i%3), "event": "E"}))
	}
	res, ch, err := e.proc.Process(context.Background(), batch)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Outcome != Processed {
			t.Fatalf("record %d: %v %v", i, r.Outcome, r.Err)
		}
	}
	wantShape(t, e, "anonymous_id:a-0 anonymous_id:a-1 anonymous_id:a-2 user_id:heavy")
	if p := e.byID(t, "user_id:heavy"); p.EventCount != 250 {
		t.Fatalf("count %d", p.EventCount)
	}
	if len(ch) != 1 || len(ch[0].Events) != 250 || !ch[0].Created {
		t.Fatalf("changes: %d records", len(ch))
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
