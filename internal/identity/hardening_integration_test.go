//go:build integration

package identity

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

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

func newHardEnv(t *testing.T, wrap func(store.Client) store.Client, cfg HandlerConfig, opt Options) *hardEnv {
	t.Helper()
	c := testenv.Clients(t)
	table := testenv.Table(t, c.DynamoDB)
	changes := testenv.Stream(t, c.Kinesis, "changes", 1)
	rules, _ := Compile(Rules{})
	var db store.Client = c.DynamoDB
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
	return &hardEnv{env: &env{store: plain, data: dynamoData{db: c.DynamoDB, table: table}, proc: NewProcessor(plain, StaticRules{rules}, opt)},
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
	store.Client
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
	return d.Client.BatchGetItem(ctx, in, o...)
}

func (d *refuseDB) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	for _, it := range in.TransactItems {
		if it.Put != nil && d.touches([]map[string]types.AttributeValue{it.Put.Item}) {
			return nil, errRefused
		}
	}
	return d.Client.TransactWriteItems(ctx, in, o...)
}

// writeOnly refuses writes only (reads pass).
type writeOnly struct{ *refuseDB }

func (w *writeOnly) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	return w.refuseDB.Client.BatchGetItem(ctx, in, o...)
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
	if err := e.store.Commit(ctx, &Commit{Profiles: []*Profile{p}}); err != nil {
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
	store.Client
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
	return d.Client.BatchGetItem(ctx, in, o...)
}

// integrationHandlerBackends is the handler on DynamoDB Local and kinesis-mock, its faults
// injected at the DynamoDB client.
func integrationHandlerBackends() []handlerBackend {
	return []handlerBackend{{name: "dynamodb", open: func(t *testing.T, fl fault, cfg HandlerConfig, opt Options) handlerEnv {
		pk := store.GetS(msgKey(fl.ref), store.PK)
		var wrap func(store.Client) store.Client
		switch fl.kind {
		case "refuse":
			wrap = func(db store.Client) store.Client { return &refuseDB{Client: db, pk: pk} }
		case "refuse-writes":
			wrap = func(db store.Client) store.Client { return &writeOnly{&refuseDB{Client: db, pk: pk}} }
		case "hang":
			wrap = func(db store.Client) store.Client { return &hangDB{Client: db, pk: pk} }
		}
		return newHardEnv(t, wrap, cfg, opt)
	}}}
}

func (e *hardEnv) handler() *Handler { return e.h }

func (e *hardEnv) published(t *testing.T, want int) [][]byte {
	t.Helper()
	var out [][]byte
	for _, r := range testenv.ReadStream(t, testenv.Clients(t).Kinesis, e.changes, want, 5*time.Second) {
		out = append(out, r.Data)
	}
	return out
}
