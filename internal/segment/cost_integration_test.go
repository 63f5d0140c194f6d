//go:build integration

package segment

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/serverless-cdp/cdp/internal/activations"
	"github.com/serverless-cdp/cdp/internal/emulator/testenv"
)

// TestChangeCostsOnePut: on DynamoDB Local, a change of a profile this process has seen, whose
// derived items (memberships, schedule, registry) do not move, costs one conditional PutItem and
// nothing else: no read (the state cache), no transaction, no outbox item or its delete. A
// change that enters an audience writes its member item in one transaction with the state.
func TestChangeCostsOnePut(t *testing.T) {
	c := testenv.Clients(t)
	m := &ruMeter{Client: c.DynamoDB}
	st := NewStore(m, testenv.Table(t, c.DynamoDB))
	e := &env{st: st, clock: &clock{t: t0}}
	e.h = NewHandler(st, &MemPublisher{}, Options{Clock: e.clock.Now})
	e.sv = NewService(st, e.clock.Now)
	ctx := context.Background()
	if _, err := e.sv.SaveTrait(ctx, ComputedTrait{Name: "Orders", Kind: KindCount, Event: EventFilter{Name: "Order Completed"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sv.SaveAudience(ctx, *aud(t, "", "Loyal", `{"computedTrait":{"key":"orders","op":"gte","value":2}}`)); err != nil {
		t.Fatal(err)
	}
	e.send(t, chg("p0", 1, `{}`)) // loads the definitions
	// Each step: a change, the calls and transactions it costs, its request units (without
	// a transaction; the states here are under 1 KB).
	for _, s := range []struct {
		name      string
		event     string
		calls, tx int
		rru, wru  float64
	}{
		{"a new profile: read (eventually consistent, nothing), registered, stored", "Page Viewed", 3, 0, 0.5, 2},
		{"an event no definition counts", "Page Viewed", 1, 0, 0, 1},
		{"an order: the count changes (an outbox record)", "Order Completed", 1, 0, 0, 1},
		{"a second order: enters the audience", "Order Completed", 1, 1, 0, 0},
		{"a third order", "Order Completed", 1, 0, 0, 1},
		{"a change with no traits and no event (identifiers only): nothing to do", "", 0, 0, 0, 0},
	} {
		before := m.usage()
		e.clock.Add(time.Minute)
		r := chg("p1", 2, `{}`, track(s.name, s.event, e.clock.Now(), `{}`))
		if s.event == "" {
			r = chg("p1", 2, "")
		}
		if resp := e.send(t, r); len(resp.BatchItemFailures) != 0 {
			t.Fatalf("%s: %v", s.name, resp.BatchItemFailures)
		}
		u := m.usage()
		calls, tx, rru, wru := u.Calls-before.Calls, u.TxCalls-before.TxCalls, u.RRU-before.RRU, u.WRU-before.WRU
		if calls != s.calls || tx != s.tx {
			t.Fatalf("%s: %d calls, %d transactions; want %d and %d", s.name, calls, tx, s.calls, s.tx)
		}
		if s.tx == 0 && (rru != s.rru || wru != s.wru) {
			t.Fatalf("%s: %.1f RRU, %.1f WRU; want %.1f and %.1f", s.name, rru, wru, s.rru, s.wru)
		}
	}
}

// TestLegacyOutboxItemPublishedAndRemoved: an outbox item of the layout before v12 (PSEG#<id> /
// OUT#<ver>, left by a crash before an upgrade) is loaded, published before the next change, and
// deleted by that change's commit.
func TestLegacyOutboxItemPublishedAndRemoved(t *testing.T) {
	c := testenv.Clients(t)
	table := testenv.Table(t, c.DynamoDB)
	st := NewStore(c.DynamoDB, table)
	pub := &MemPublisher{}
	h := NewHandler(st, pub, Options{Clock: func() time.Time { return t0 }})
	e := &env{h: h}
	e.send(t, chg("p1", 1, `{}`))
	old, _ := json.Marshal([]activations.Record{{ID: "legacy-1", Kind: activations.KindAudienceEntered, ProfileID: "p1"}})
	if _, err := c.DynamoDB.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(table),
		Item: marshal(blobItem{PK: pkStatePfx + "p1", SK: skOutboxPfx + "1", Data: old})}); err != nil {
		t.Fatal(err)
	}
	l, err := st.Load(context.Background(), "p1", true)
	if err != nil || len(l.Outbox[1]) != 1 || !slices.Equal(l.legacy, []int64{1}) {
		t.Fatalf("load: %+v %v", l, err)
	}
	e.h = NewHandler(st, pub, Options{Clock: func() time.Time { return t0 }}) // a new process
	e.send(t, chg("p1", 2, `{"plan":"pro"}`))
	var ids []string
	for _, r := range pub.Records() {
		var a activations.Record
		_ = json.Unmarshal(r.Data, &a)
		ids = append(ids, a.ID)
	}
	if !slices.Contains(ids, "legacy-1") {
		t.Fatalf("legacy outbox not published: %v", ids)
	}
	if l, err := st.Load(context.Background(), "p1", true); err != nil || len(l.Outbox) != 0 || len(l.legacy) != 0 {
		t.Fatalf("after the next commit: %+v %v", l, err)
	}
}
