//go:build integration

package segment

import (
	"context"
	"testing"
	"time"

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
