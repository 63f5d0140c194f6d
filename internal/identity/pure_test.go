package identity

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/serverless-cdp/cdp/internal/tracking"
)

func TestExtract(t *testing.T) {
	m := tracking.Message{
		Type: "identify", UserID: " u1 ", AnonymousID: "a1",
		Traits:  json.RawMessage(`{"email":" Ann@X.IO ","phone":4912345}`),
		Context: json.RawMessage(`{"traits":{"email":"ann@x.io","phone":"+49 1"},"device":{"id":"d1","advertisingId":"ad-1"},"externalIds":[{"id":"C1","type":"CRM_ID","collection":"users","encoding":"none"},{"id":"acc","type":"sfdc","collection":"accounts"},{"id":"g","type":"group_id"},{"id":"b64","type":"x","encoding":"base64"},{"id":7,"type":"num"},{"type":"noid"}]}`),
	}
	ex := Extract(&m)
	var got []string
	for _, id := range ex.IDs {
		got = append(got, id.String())
	}
	want := "user_id:u1 anonymous_id:a1 email:ann@x.io phone:4912345 phone:+49 1 device_id:d1 advertising_id:ad-1 crm_id:C1 x:b64 num:7"
	if strings.Join(got, " ") != want {
		t.Fatalf("got  %s\nwant %s", strings.Join(got, " "), want)
	}
	if ex.Encoding[Identifier{"x", "b64"}] != "base64" {
		t.Fatal("encoding lost")
	}
	// Group traits describe the account, not the person: their email is no identifier.
	g := tracking.Message{Type: "group", UserID: "u", GroupID: "g", Traits: json.RawMessage(`{"email":"billing@acme.com"}`)}
	if ids := Extract(&g).IDs; len(ids) != 1 {
		t.Fatalf("group: %v", ids)
	}
	// A context of the wrong shape is ignored, not fatal.
	bad := tracking.Message{Type: "track", AnonymousID: "a", Context: json.RawMessage(`{"device":"x","traits":[1],"externalIds":{"a":1}}`)}
	if ids := Extract(&bad).IDs; len(ids) != 1 {
		t.Fatalf("bad context: %v", ids)
	}
	al := tracking.Message{Type: "alias", UserID: "u", PreviousID: " old "}
	if Extract(&al).PreviousID != "old" {
		t.Fatal("previousId")
	}
}

func FuzzExtract(f *testing.F) {
	f.Add("identify", "u", "a", []byte(`{"email":"A@B.c"}`), []byte(`{"traits":{"email":"x"},"device":{"id":"d"},"externalIds":[{"id":"1","type":"t"}]}`))
	f.Add("track", "", " ", []byte(`null`), []byte(`{"externalIds":[{"id":" ","type":" "}]}`))
	f.Add("alias", "\x00", "é", []byte(`{"email":1e400}`), []byte(`[`))
	f.Fuzz(func(t *testing.T, typ, uid, aid string, traits, ctx []byte) {
		m := tracking.Message{Type: typ, UserID: uid, AnonymousID: aid, PreviousID: aid, Traits: traits, Context: ctx}
		ex := Extract(&m)
		if len(ex.IDs) > MaxIdentifiersPerMessage {
			t.Fatalf("%d identifiers", len(ex.IDs))
		}
		seen := map[Identifier]bool{}
		for _, id := range ex.IDs {
			if id.Type == "" || id.Value == "" || seen[id] {
				t.Fatalf("bad or duplicate identifier %q", id)
			}
			seen[id] = true
			if strings.TrimSpace(id.Value) != id.Value || strings.TrimSpace(id.Type) != id.Type || strings.ToLower(id.Type) != id.Type {
				t.Fatalf("not normalised: %q", id)
			}
			if id.Type == TypeEmail && strings.ToLower(id.Value) != id.Value {
				t.Fatalf("email not lower-cased: %q", id.Value)
			}
			if id.Type == TypeGroupID {
				t.Fatal("group_id extracted as a person identifier")
			}
			if again := NewIdentifier(id.Type, id.Value); again != id && utf8.ValidString(id.Value) {
				t.Fatalf("normalisation not idempotent: %q → %q", id, again)
			}
		}
	})
}

// mem is an in-memory identity graph for pure resolution tests.
type mem map[Identifier]*Profile

func (g mem) add(id string, ids ...string) *Profile {
	p := &Profile{ID: id, CreatedAt: time.Unix(int64(len(g)), 0)}
	for _, s := range ids {
		i, _ := ParseIdentifier(s)
		p.addIdentifier(IdentifierRecord{Identifier: i})
		g[i] = p
	}
	return p
}

func idsOf(ss ...string) []Identifier {
	var out []Identifier
	for _, s := range ss {
		i, _ := ParseIdentifier(s)
		out = append(out, i)
	}
	return out
}

func TestResolve(t *testing.T) {
	rules, _ := Compile(Rules{})
	g := mem{}
	p1 := g.add("p1", "user_id:A", "anonymous_id:x")
	p2 := g.add("p2", "anonymous_id:y", "device_id:D")
	p3 := g.add("p3", "user_id:B", "anonymous_id:z")
	lookup := func(i Identifier) *Profile { return g[i] }

	d := Resolve(lookup, idsOf("anonymous_id:new"), nil, rules)
	if d.Target != nil || len(d.Attach) != 1 {
		t.Fatalf("new: %+v", d)
	}
	d = Resolve(lookup, idsOf("user_id:A", "email:e"), nil, rules)
	if d.Target != p1 || len(d.Merge) != 0 || fmt.Sprint(d.Attach) != "[email:e]" {
		t.Fatalf("attach: %+v", d)
	}
	d = Resolve(lookup, idsOf("anonymous_id:x", "device_id:D"), nil, rules)
	if d.Target != p1 || len(d.Merge) != 1 || d.Merge[0] != p2 {
		t.Fatalf("merge: %+v", d)
	}
	// user_id B with D (anonymous profile) and x (A's profile): x is dropped, D merges.
	d = Resolve(lookup, idsOf("user_id:C", "anonymous_id:x", "device_id:D"), nil, rules)
	if d.Target != p2 || len(d.Merge) != 0 || len(d.Dropped) != 1 || d.Dropped[0].Identifier.String() != "anonymous_id:x" || d.Dropped[0].Rule != "limit user_id=1" {
		t.Fatalf("drop: %+v", d)
	}
	// Two user ids' profiles joined by anonymous ids: one side dropped, no over-merge.
	d = Resolve(lookup, idsOf("anonymous_id:x", "anonymous_id:z"), nil, rules)
	if len(d.Merge) != 0 || len(d.Dropped) != 1 {
		t.Fatalf("two users: %+v", d)
	}
	// Alias: the preferred user id's profile survives.
	d = Resolve(lookup, idsOf("user_id:B", "anonymous_id:y"), &Identifier{TypeUserID, "B"}, rules)
	if d.Target != p3 || len(d.Merge) != 1 || d.Merge[0] != p2 {
		t.Fatalf("alias: %+v", d)
	}
	// Email limit: a sixth email is dropped, the event still attaches.
	g2 := mem{}
	g2.add("q", "user_id:U", "email:1", "email:2", "email:3", "email:4", "email:5")
	d = Resolve(func(i Identifier) *Profile { return g2[i] }, idsOf("user_id:U", "email:6"), nil, rules)
	if d.Target == nil || d.Target.ID != "q" || len(d.Attach) != 0 || len(d.Dropped) != 1 || d.Dropped[0].Rule != "limit email=5" {
		t.Fatalf("email limit: %+v", d)
	}
}

func TestMergeTraitsOrderIndependent(t *testing.T) {
	type upd struct {
		traits map[string]json.RawMessage
		at     time.Time
		id     string
	}
	r := rand.New(rand.NewPCG(1, 2))
	var ups []upd
	for i := 0; i < 40; i++ {
		ups = append(ups, upd{
			traits: map[string]json.RawMessage{fmt.Sprintf("k%d", r.IntN(5)): json.RawMessage(fmt.Sprint(i))},
			at:     t0.Add(time.Duration(r.IntN(10)) * time.Second), id: fmt.Sprintf("m%02d", i),
		})
	}
	var want map[string]Trait
	for trial := 0; trial < 20; trial++ {
		r.Shuffle(len(ups), func(i, j int) { ups[i], ups[j] = ups[j], ups[i] })
		got := map[string]Trait{}
		for _, u := range ups {
			MergeTraits(got, u.traits, u.at, u.id)
		}
		if want == nil {
			want = got
		} else if !reflect.DeepEqual(got, want) {
			t.Fatal("trait merge depends on order")
		}
	}
}

func TestBlockedDefaults(t *testing.T) {
	rules, _ := Compile(Rules{})
	for _, v := range []string{"", "0", "000-000", "-1", "NULL", "undefined", "Anonymous", "nil"} {
		if rules.Blocked(Identifier{"anonymous_id", v}) == "" {
			t.Errorf("%q not blocked", v)
		}
	}
	for _, v := range []string{"10", "a-0", "nullable"} {
		if rules.Blocked(Identifier{"user_id", v}) != "" {
			t.Errorf("%q blocked", v)
		}
	}
	if !rules.Higher(TypeUserID, TypeEmail) || !rules.Higher(TypeEmail, TypeAdvertisingID) || !rules.Higher(TypeAdvertisingID, TypeAnonymousID) {
		t.Error("priorities")
	}
}
