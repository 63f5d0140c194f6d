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

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/serverless-cdp/cdp/internal/change"
	"github.com/serverless-cdp/cdp/internal/deadletter"
	"github.com/serverless-cdp/cdp/internal/emulator/testenv"
	"github.com/serverless-cdp/cdp/internal/store"
	"github.com/serverless-cdp/cdp/internal/stream"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

// hardEnv is a handler on a private table and changes stream.
type hardEnv struct {
	*env
	h       *Handler
	dl      *deadletter.Store
	changes string
}

func newHardEnv(t *testing.T, wrap func(DynamoAPI) DynamoAPI, cfg HandlerConfig, opt Options) *hardEnv {
	t.Helper()
	c := testenv.Clients(t)
	table := testenv.Table(t, c.DynamoDB)
	changes := testenv.Stream(t, c.Kinesis, "changes", 1)
	rules, _ := Compile(Rules{})
	var db DynamoAPI = c.DynamoDB
	if wrap != nil {
		db = wrap(db)
	}
	st := NewStore(db, table)
	dl := deadletter.NewStore(c.DynamoDB, table)
	cfg.Processor, cfg.Store = NewProcessor(st, StaticRules{rules}, opt), st
	if cfg.Changes == nil {
		cfg.Changes = stream.NewPublisher(c.Kinesis, changes)
	}
	if cfg.DeadLetters == nil {
		cfg.DeadLetters = dl
	}
	plain := NewStore(c.DynamoDB, table)
	return &hardEnv{env: &env{db: c.DynamoDB, table: table, store: plain, proc: NewProcessor(plain, StaticRules{rules}, opt)},
		h: NewHandler(cfg), dl: dl, changes: changes}
}

func (e *hardEnv) deadLetters(t *testing.T) []deadletter.Entry {
	t.Helper()
	es, _, err := e.dl.List(context.Background(), Stage, 100, "")
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// sixty is a batch of 60 track events of 60 users (u0…u59) from source src1.
func sixty(prefix string) []any {
	out := make([]any, 0, 60)
	for i := 0; i < 60; i++ {
		out = append(out, rec("track", fmt.Sprintf("%s-m%d", prefix, i), i, f{"uid": fmt.Sprintf("u%d", i), "event": "Viewed"}))
	}
	return out
}

// One record with an over-long id (or an impossible timestamp) in a batch of 60: the 59 others
// are stored, the bad one alone is dead-lettered with its reason, nothing is retried.
func TestHandlerOverlongFieldsDeadLetterOnlyTheirRecord(t *testing.T) {
	cases := []struct {
		name, field string
		mutate      func(r *tracking.Record)
		raw         func(b []byte) []byte
	}{
		{name: "messageId", field: "messageId", mutate: func(r *tracking.Record) { r.Message.MessageID = strings.Repeat("m", 3000) }},
		{name: "userId", field: "userId", mutate: func(r *tracking.Record) { r.Message.UserID = strings.Repeat("u", 3000) }},
		{name: "email", field: "context.traits.email", mutate: func(r *tracking.Record) {
			r.Message.Context = json.RawMessage(`{"traits":{"email":"` + strings.Repeat("e", 2990) + `@x.io"}}`)
		}},
		{name: "timestamp", field: "timestamp", raw: func(b []byte) []byte {
			return []byte(strings.Replace(string(b), `"timestamp":"2025-03-01T12:17:00Z"`, `"timestamp":"0000-01-01T00:00:00+01:00"`, 1))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newHardEnv(t, nil, HandlerConfig{}, Options{})
			batch := sixty(tc.name)
			bad := batch[17].(tracking.Record)
			if tc.mutate != nil {
				tc.mutate(&bad)
				batch[17] = bad
			} else {
				b, _ := json.Marshal(bad)
				batch[17] = tc.raw(b)
			}
			resp, err := e.h.Handle(context.Background(), kinesisEvent(t, batch...))
			if err != nil || len(resp.BatchItemFailures) != 0 {
				t.Fatalf("handle: %v, failures %+v", err, resp.BatchItemFailures)
			}
			es := e.deadLetters(t)
			if len(es) != 1 || es[0].Reason != "invalid_record" || !strings.Contains(es[0].Error, tc.field) || es[0].Meta["sequenceNumber"] != "1017" {
				t.Fatalf("dead letters: want only record 17 (invalid_record, %s), got %+v", tc.field, es)
			}
			for i := 0; i < 60; i++ {
				if i == 17 && tc.name != "email" && tc.name != "timestamp" {
					continue
				}
				p, err := e.store.Lookup(context.Background(), Identifier{TypeUserID, fmt.Sprintf("u%d", i)})
				switch {
				case err != nil:
					t.Fatal(err)
				case i == 17 && p != nil:
					t.Fatalf("the invalid record was stored: %+v", p)
				case i != 17 && (p == nil || p.EventCount != 1):
					t.Fatalf("u%d: profile %+v", i, p)
				}
			}
		})
	}
}

// refuseDB answers ValidationException, as DynamoDB does for a key or item it cannot hold, to
// any read or write that touches the marker of one message.
type refuseDB struct {
	DynamoAPI
	pk    string
	calls int
	mu    sync.Mutex
}

func (d *refuseDB) touches(keys []map[string]types.AttributeValue) bool {
	for _, k := range keys {
		if store.GetS(k, store.PK) == d.pk {
			d.mu.Lock()
			d.calls++
			d.mu.Unlock()
			return true
		}
	}
	return false
}

var errRefused = &smithy.GenericAPIError{Code: "ValidationException", Message: "injected: Item size has exceeded the maximum allowed size"}

func (d *refuseDB) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	for _, ka := range in.RequestItems {
		if d.touches(ka.Keys) {
			return nil, errRefused
		}
	}
	return d.DynamoAPI.BatchGetItem(ctx, in, o...)
}

func (d *refuseDB) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	for _, it := range in.TransactItems {
		if it.Put != nil && d.touches([]map[string]types.AttributeValue{it.Put.Item}) {
			return nil, errRefused
		}
	}
	return d.DynamoAPI.TransactWriteItems(ctx, in, o...)
}

// A value the store refuses fails neither the batch nor anyone else's record: the group it is
// in is bisected until it stands alone, and only it is dead-lettered (store_rejected).
func TestHandlerStoreRefusalIsolatesTheRecord(t *testing.T) {
	for _, on := range []string{"read", "write"} {
		t.Run(on, func(t *testing.T) {
			poison := msgKey(msgRef{source: "src1", id: "refused-m23"})
			e := newHardEnv(t, func(db DynamoAPI) DynamoAPI {
				rdb := &refuseDB{DynamoAPI: db, pk: store.GetS(poison, store.PK)}
				if on == "write" {
					return &writeOnly{rdb}
				}
				return rdb
			}, HandlerConfig{}, Options{})
			batch := sixty("refused")
			// u23's record shares a profile with the next one: its component has two records.
			batch[24] = rec("track", "refused-m24", 24, f{"uid": "u23", "event": "Viewed"})
			resp, err := e.h.Handle(context.Background(), kinesisEvent(t, batch...))
			if err != nil || len(resp.BatchItemFailures) != 0 {
				t.Fatalf("handle: %v, failures %+v", err, resp.BatchItemFailures)
			}
			es := e.deadLetters(t)
			if len(es) != 1 || es[0].Reason != "store_rejected" || es[0].Meta["sequenceNumber"] != "1023" || !strings.Contains(es[0].Error, "ValidationException") {
				t.Fatalf("dead letters: want only record 23 (store_rejected), got %+v", es)
			}
			for i := 0; i < 60; i++ {
				if i == 23 || i == 24 {
					continue
				}
				if p := e.byID(t, fmt.Sprintf("user_id:u%d", i)); p.EventCount != 1 {
					t.Fatalf("u%d: %d events", i, p.EventCount)
				}
			}
			if p := e.byID(t, "user_id:u23"); p.EventCount != 1 {
				t.Fatalf("u23: %d events, want only the innocent record of the pair", p.EventCount)
			}
		})
	}
}

// writeOnly refuses writes only (reads pass).
type writeOnly struct{ *refuseDB }

func (w *writeOnly) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	return w.refuseDB.DynamoAPI.BatchGetItem(ctx, in, o...)
}

// DynamoDB Local itself refuses an event too large for one item: only that record is Rejected.
func TestProcessRealItemTooLargeIsRejectedAlone(t *testing.T) {
	e := newEnv(t, nil)
	var recs []tracking.Record
	for i := 0; i < 10; i++ {
		recs = append(recs, rec("track", fmt.Sprintf("big-%d", i), i, f{"uid": fmt.Sprintf("u%d", i%3), "event": "E"}))
	}
	recs[4].Message.Properties = json.RawMessage(`{"blob":"` + strings.Repeat("x", 420<<10) + `"}`)
	res, _, err := e.proc.Process(context.Background(), recs)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		want := Processed
		if i == 4 {
			want = Rejected
		}
		if r.Outcome != want {
			t.Fatalf("record %d: %v (%v), want %v", i, r.Outcome, r.Err, want)
		}
	}
	if p := e.byID(t, "user_id:u1"); p.EventCount != 2 {
		t.Fatalf("u1 (shares a profile with the refused record): %d events, want 2", p.EventCount)
	}
}

func withSource(r tracking.Record, src string) tracking.Record {
	r.SourceID = src
	return r
}

// messageId is unique within a source: the same id from two sources is two events; from one
// source, one.
func TestDedupePerSource(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	a := rec("track", "same-id", 0, f{"uid": "u1", "event": "A"})
	res := e.process(t, withSource(a, "s1"), withSource(a, "s2"), withSource(a, "s1"))
	if res[0].Outcome != Processed || res[1].Outcome != Processed || res[2].Outcome != Duplicate {
		t.Fatalf("first delivery: %+v", res)
	}
	res = e.process(t, withSource(a, "s2"), withSource(a, "s1"))
	if res[0].Outcome != Duplicate || res[1].Outcome != Duplicate {
		t.Fatalf("redelivery: %+v", res)
	}
	p := e.byID(t, "user_id:u1")
	evs, _, err := e.store.Events(ctx, p, Page{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if p.EventCount != 2 || len(evs) != 2 || evs[0].SourceID == evs[1].SourceID {
		t.Fatalf("event count %d, timeline %+v", p.EventCount, evs)
	}
	// A message that creates a profile in each of two sources: two profiles.
	e.process(t, withSource(rec("identify", "new-id", 1, f{"uid": "u2"}), "s1"), withSource(rec("identify", "new-id", 1, f{"uid": "u3"}), "s2"))
	wantShape(t, e, "user_id:u1", "user_id:u2", "user_id:u3")
}

// Markers written before dedupe was per source (MSG#<messageId>) still count for their source.
func TestLegacyDedupeMarkers(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	msg, _ := json.Marshal(rec("track", "old-1", 0, f{"uid": "u1", "event": "A"}).Message)
	item := legacyMsgKey("old-1")
	item["source"], item["msg"], item["profile"] = sv("s1"), sv(string(msg)), sv("use_gone")
	if _, err := e.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(e.table), Item: item}); err != nil {
		t.Fatal(err)
	}
	r := rec("track", "old-1", 0, f{"uid": "u1", "event": "A"})
	res := e.process(t, withSource(r, "s1"), withSource(r, "s2"))
	if res[0].Outcome != Duplicate || res[1].Outcome != Processed {
		t.Fatalf("with legacy markers: %+v", res)
	}
	rules, _ := Compile(Rules{})
	skip := NewProcessor(e.store, StaticRules{rules}, Options{SkipLegacyDedupe: true})
	res, _, _ = skip.Process(ctx, []tracking.Record{withSource(r, "s1")})
	if res[0].Outcome != Processed {
		t.Fatalf("SkipLegacyDedupe: %+v", res)
	}
}

func bigTrait(key string, n int) string {
	return fmt.Sprintf(`{%q:%q}`, key, strings.Repeat("t", n))
}

// 40 identifies with a 31 KB trait each: the profile keeps what fits in MaxTraitBytes, counts
// every event, and its merge log names each refused trait; change records stay small.
func TestTraitBudget(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	for b := 0; b < 4; b++ {
		var recs []tracking.Record
		for i := b * 10; i < b*10+10; i++ {
			recs = append(recs, rec("identify", fmt.Sprintf("big-%02d", i), i, f{"uid": "big", "traits": bigTrait(fmt.Sprintf("k%02d", i), 31<<10)}))
		}
		res, chs, err := e.proc.Process(ctx, recs)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.Outcome != Processed {
				t.Fatalf("%+v", r)
			}
		}
		for _, c := range chs {
			if b, _ := json.Marshal(c); len(b) > 2*MaxTraitBytes+20*(32<<10) {
				t.Fatalf("change record of %d bytes", len(b))
			}
		}
	}
	p := e.byID(t, "user_id:big")
	if c := traitsCost(p.Traits); c > MaxTraitBytes || len(p.Traits) != 2 || p.EventCount != 40 {
		t.Fatalf("traits cost %d (%d traits), %d events", c, len(p.Traits), p.EventCount)
	}
	refused := refusedTraits(t, e, p)
	if len(refused) != 38 || !refused["k02"] || !refused["k39"] || refused["k00"] {
		t.Fatalf("refused keys in the merge log: %v", refused)
	}
	evs, _, _ := e.store.Events(ctx, p, Page{Limit: 100})
	if len(evs) != 40 {
		t.Fatalf("timeline: %d events", len(evs))
	}
}

func refusedTraits(t *testing.T, e *env, p *Profile) map[string]bool {
	t.Helper()
	logs, _, err := e.store.MergeLog(context.Background(), p, Page{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, l := range logs {
		for _, a := range l.Actions {
			if a.Kind == ActionRefused && a.Rule == RuleTraitBudget {
				for _, k := range a.Traits {
					out[k] = true
				}
			}
		}
	}
	return out
}

// Merging two profiles that each hold almost the budget keeps the survivor within it.
func TestTraitBudgetOnMerge(t *testing.T) {
	e := newEnv(t, nil)
	e.process(t, rec("identify", "a1", 0, f{"aid": "anon", "traits": `{"a1":"` + strings.Repeat("a", 31<<10) + `","a2":"` + strings.Repeat("a", 31<<10) + `"}`}))
	e.process(t, rec("identify", "b1", 1, f{"uid": "user", "traits": `{"b1":"` + strings.Repeat("b", 31<<10) + `","b2":"` + strings.Repeat("b", 31<<10) + `"}`}))
	e.process(t, rec("identify", "m", 2, f{"uid": "user", "aid": "anon"}))
	wantShape(t, e, "anonymous_id:anon user_id:user")
	p := e.byID(t, "user_id:user")
	if c := traitsCost(p.Traits); c > MaxTraitBytes || len(p.Traits) != 2 {
		t.Fatalf("survivor's traits cost %d (%d traits)", c, len(p.Traits))
	}
	if refused := refusedTraits(t, e, p); len(refused) != 2 {
		t.Fatalf("refused on merge: %v", refused)
	}
}

// Change records carry the full traits only when they changed, the profile is new or merged.
func TestChangeRecordsCarryTraitsOnlyWhenChanged(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	steps := []struct {
		r      tracking.Record
		traits bool
	}{
		{rec("identify", "c1", 0, f{"uid": "u", "traits": `{"plan":"pro"}`}), true},  // created
		{rec("track", "c2", 1, f{"uid": "u", "event": "Viewed"}), false},             // no trait change
		{rec("identify", "c3", 2, f{"uid": "u", "traits": `{"plan":"pro"}`}), false}, // same value
		{rec("identify", "c4", 3, f{"uid": "u", "traits": `{"plan":"gold"}`}), true}, // changed
		{rec("identify", "c5", 4, f{"aid": "x", "traits": `{"seen":true}`}), true},   // another profile, created
		{rec("identify", "c6", 5, f{"uid": "u", "aid": "x"}), true},                  // merge
	}
	for i, s := range steps {
		_, chs, err := e.proc.Process(ctx, []tracking.Record{s.r})
		if err != nil || len(chs) != 1 {
			t.Fatalf("step %d: %v %+v", i, err, chs)
		}
		if got := chs[0].Traits != nil; got != s.traits {
			t.Fatalf("step %d (%s): traits present %v, want %v: %+v", i, s.r.Message.MessageID, got, s.traits, chs[0])
		}
	}
}

// No part of a split change record exceeds the limit, whatever the profile holds.
func TestSplitChangeBoundsEveryPart(t *testing.T) {
	c := change.Record{ProfileID: "use_x", Version: 3, Traits: map[string]json.RawMessage{"t": json.RawMessage(`"` + strings.Repeat("v", 60<<10) + `"`)},
		Identifiers: []change.Identifier{{Type: "user_id", Value: "u"}}}
	for i := 0; i < 100; i++ {
		c.Events = append(c.Events, tracking.Message{MessageID: fmt.Sprint(i), Properties: json.RawMessage(`{"pad":"` + strings.Repeat("x", 30<<10) + `"}`)})
	}
	const limit = 256 << 10
	parts, err := SplitChange(c, limit)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for i, p := range parts {
		var r change.Record
		if err := json.Unmarshal(p, &r); err != nil {
			t.Fatal(err)
		}
		if len(p) > limit || r.Part != i+1 || r.Parts != len(parts) || r.ProfileID != "use_x" || r.Version != 3 || (i == 0) != (r.Traits != nil) {
			t.Fatalf("part %d: %d bytes, header %d/%d, traits %v", i, len(p), r.Part, r.Parts, r.Traits != nil)
		}
		seen += len(r.Events)
	}
	if seen != 100 {
		t.Fatalf("%d events in %d parts", seen, len(parts))
	}
	huge := c
	huge.Traits = map[string]json.RawMessage{"t": json.RawMessage(`"` + strings.Repeat("v", limit) + `"`)}
	if _, err := SplitChange(huge, limit); !errors.Is(err, ErrChangeTooLarge) {
		t.Fatalf("state over the limit: %v", err)
	}
	one := change.Record{ProfileID: "use_x", Events: []tracking.Message{{MessageID: "a", Properties: json.RawMessage(`"` + strings.Repeat("x", limit) + `"`)}, {MessageID: "b"}}}
	if _, err := SplitChange(one, limit); !errors.Is(err, ErrChangeTooLarge) {
		t.Fatalf("one event over the limit: %v", err)
	}
}

// recordingDeadLetters keeps entries in memory (payloads of any size).
type recordingDeadLetters struct {
	mu      sync.Mutex
	entries []deadletter.Entry
}

func (d *recordingDeadLetters) Put(_ context.Context, e deadletter.Entry) (deadletter.Entry, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.entries = append(d.entries, e)
	return e, nil
}

// A profile stored before the budget existed, too large for any change record, does not hold
// back the change records of the other profiles in its batch: only its own is dead-lettered.
func TestHandlerOversizedProfileDoesNotBlockOthers(t *testing.T) {
	rdl := &recordingDeadLetters{}
	e := newHardEnv(t, nil, HandlerConfig{DeadLetters: rdl}, Options{})
	ctx := context.Background()
	e.process(t, rec("identify", "seed", 0, f{"uid": "big", "traits": `{"k00":"x"}`}))
	p := e.byID(t, "user_id:big")
	for i := 1; i < 45; i++ { // 44 × 31 KB: 1.3 MB, compressible, as a pre-budget profile could be
		p.Traits[fmt.Sprintf("k%02d", i)] = Trait{Value: json.RawMessage(`"` + strings.Repeat("t", 31<<10) + `"`), At: t0}
	}
	if err := e.store.commit(ctx, &txn{profiles: []*Profile{p}}); err != nil {
		t.Fatal(err)
	}
	batch := []any{rec("identify", "sh", 1, f{"uid": "big", "traits": `{"k00":"y"}`})} // its cost shrinks: accepted
	for i := 0; i < 20; i++ {
		batch = append(batch, rec("track", fmt.Sprintf("other-%d", i), 2+i, f{"uid": fmt.Sprintf("o%d", i), "event": "Order Completed"}))
	}
	resp, err := e.h.Handle(ctx, kinesisEvent(t, batch...))
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("handle: %v %+v", err, resp)
	}
	if len(rdl.entries) != 1 || rdl.entries[0].Kind != KindChange || rdl.entries[0].Reason != "change_too_large" {
		t.Fatalf("dead letters: %d (%+v), want the big profile's change only", len(rdl.entries), rdl.entries)
	}
	recs := testenv.ReadStream(t, testenv.Clients(t).Kinesis, e.changes, 20, 10*time.Second)
	users := map[string]bool{}
	for _, r := range recs {
		var ch change.Record
		_ = json.Unmarshal(r.Data, &ch)
		for _, ev := range ch.Events {
			users[ev.UserID] = true
		}
	}
	if len(recs) != 20 || len(users) != 20 || users["big"] {
		t.Fatalf("published %d records for users %v", len(recs), users)
	}
}

// hangDB hangs every call that touches one message's marker until the caller gives up, as a
// poison record whose processing always times out.
type hangDB struct {
	DynamoAPI
	pk string
}

func (d *hangDB) hang(ctx context.Context, keys []map[string]types.AttributeValue) error {
	for _, k := range keys {
		if store.GetS(k, store.PK) == d.pk {
			<-ctx.Done()
			return ctx.Err()
		}
	}
	return nil
}

func (d *hangDB) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	for _, ka := range in.RequestItems {
		if err := d.hang(ctx, ka.Keys); err != nil {
			return nil, err
		}
	}
	return d.DynamoAPI.BatchGetItem(ctx, in, o...)
}

// A poison record whose processing times out on every attempt reaches MaxAttempts and is
// dead-lettered (the bookkeeping survives the deadline); the records around it are stored, and
// none of them is dead-lettered. The loop delivers like Lambda: each retry starts at the first
// record reported failed.
func TestHandlerPoisonTimeoutsReachMaxAttempts(t *testing.T) {
	poison := msgRef{source: "src1", id: "p-3"}
	e := newHardEnv(t, func(db DynamoAPI) DynamoAPI { return &hangDB{DynamoAPI: db, pk: store.GetS(msgKey(poison), store.PK)} },
		HandlerConfig{MaxAttempts: 3, Reserve: 300 * time.Millisecond, BookkeepingTimeout: 2 * time.Second}, Options{Reserve: 50 * time.Millisecond})
	var batch []any
	for i := 0; i < 8; i++ {
		batch = append(batch, rec("track", fmt.Sprintf("p-%d", i), i, f{"uid": fmt.Sprintf("u%d", i), "event": "E"}))
	}
	ev := kinesisEvent(t, batch...)
	recs := ev.Records
	invocations := 0
	for ; len(recs) > 0 && invocations < 12; invocations++ {
		ctx, cancel := context.WithTimeout(context.Background(), 1200*time.Millisecond)
		resp, err := e.h.Handle(ctx, events.KinesisEvent{Records: recs})
		cancel()
		if err != nil {
			t.Fatalf("invocation %d: %v", invocations, err)
		}
		next := len(recs)
		for _, f := range resp.BatchItemFailures {
			for i, r := range recs {
				if r.Kinesis.SequenceNumber == f.ItemIdentifier && i < next {
					next = i
				}
			}
		}
		recs = recs[next:]
	}
	if len(recs) != 0 {
		t.Fatalf("after %d invocations %d records are still pending", invocations, len(recs))
	}
	es := e.deadLetters(t)
	if len(es) != 1 || es[0].Reason != "retries_exhausted" || es[0].Meta["sequenceNumber"] != "1003" {
		t.Fatalf("dead letters: %+v", es)
	}
	for i := 0; i < 8; i++ {
		if i == 3 {
			continue
		}
		if p := e.byID(t, fmt.Sprintf("user_id:u%d", i)); p.EventCount != 1 {
			t.Fatalf("u%d: %d events", i, p.EventCount)
		}
	}
	t.Logf("%d invocations", invocations)
}

// A retried batch is processed record by record; its change records still describe each
// profile once, with the traits of a new profile.
func TestHandlerRetriedBatchFoldsChanges(t *testing.T) {
	e := newHardEnv(t, nil, HandlerConfig{}, Options{})
	ctx := context.Background()
	first := rec("identify", "f1", 0, f{"uid": "u", "traits": `{"plan":"pro"}`})
	if _, err := e.h.cfg.Store.countAttempt(ctx, first.SourceID, first.Message.MessageID); err != nil {
		t.Fatal(err)
	}
	resp, err := e.h.Handle(ctx, kinesisEvent(t, first, rec("track", "f2", 1, f{"uid": "u", "event": "E"}), rec("track", "f3", 2, f{"uid": "v", "event": "E"})))
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("handle: %v %+v", err, resp)
	}
	recs := testenv.ReadStream(t, testenv.Clients(t).Kinesis, e.changes, 2, 5*time.Second)
	byUser := map[string]change.Record{}
	for _, r := range recs {
		var ch change.Record
		_ = json.Unmarshal(r.Data, &ch)
		byUser[ch.Events[0].UserID] = ch
	}
	u := byUser["u"]
	if len(recs) != 2 || !u.Created || len(u.Events) != 2 || string(u.Traits["plan"]) != `"pro"` {
		t.Fatalf("change records: %d, u: %+v", len(recs), u)
	}
}

// Group traits, all groups together, have the same budget as the profile's traits.
func TestGroupTraitBudget(t *testing.T) {
	p := &Profile{ID: "use_g"}
	var refused []string
	for i := 0; i < 10; i++ {
		m := rec("group", fmt.Sprintf("g%d", i), i, f{"uid": "u", "group": fmt.Sprintf("acct-%d", i), "traits": bigTrait("blob", 20<<10)}).Message
		refused = append(refused, p.ApplyMessage(&m, "src1", t0)...)
	}
	if c := groupsCost(p.Groups); c > MaxTraitBytes || p.EventCount != 10 {
		t.Fatalf("group traits cost %d, %d events", c, p.EventCount)
	}
	if len(refused) != 7 || refused[0] != "groups.acct-3.blob" {
		t.Fatalf("refused %v", refused)
	}
}
