//go:build integration

package identity

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/serverless-cdp/cdp/internal/change"
	"github.com/serverless-cdp/cdp/internal/deadletter"
	"github.com/serverless-cdp/cdp/internal/emulator/testenv"
	"github.com/serverless-cdp/cdp/internal/stream"
)

// A batch whose change records could neither be published nor dead-lettered is retried by
// Lambda; every message is a duplicate then, and the retry must re-emit what was lost.
func TestHandlerRedeliveryReemitsLostChanges(t *testing.T) {
	c := testenv.Clients(t)
	table := testenv.Table(t, c.DynamoDB)
	changes := testenv.Stream(t, c.Kinesis, "changes", 1)
	rules, _ := Compile(Rules{})
	st := NewStore(c.DynamoDB, table)
	ctx := context.Background()
	batch := []any{
		rec("identify", "r1", 0, f{"uid": "u1", "aid": "a1", "traits": `{"plan":"pro"}`}),
		rec("track", "r2", 1, f{"aid": "a1", "event": "Order Completed"}),
		rec("page", "r3", 2, f{"aid": "a2"}),
		rec("track", "r4", 3, f{"uid": "u2", "event": "Signed Up"}),
		rec("track", "r5", 4, f{"aid": "a2", "event": "Viewed"}),
	}
	dl := &failingDeadLetters{}
	h := NewHandler(HandlerConfig{Processor: NewProcessor(st, StaticRules{rules}, Options{}), Store: st, Changes: failingPublisher{}, DeadLetters: dl})
	if _, err := h.Handle(ctx, kinesisEvent(t, batch...)); err == nil || dl.calls == 0 {
		t.Fatalf("want an error when changes are neither published nor dead-lettered: %v (dead-letter calls %d)", err, dl.calls)
	}
	e := &env{store: st, data: dynamoData{db: c.DynamoDB, table: table}}
	before := e.liveProfiles(t)
	if len(before) != 3 {
		t.Fatalf("profiles after the first delivery: %d", len(before))
	}

	// Lambda retries the batch; Kinesis works again.
	h = NewHandler(HandlerConfig{Processor: NewProcessor(st, StaticRules{rules}, Options{}), Store: st,
		Changes: stream.NewPublisher(c.Kinesis, changes), DeadLetters: deadletter.NewStore(c.DynamoDB, table)})
	resp, err := h.Handle(ctx, kinesisEvent(t, batch...))
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("redelivery: %v %+v", err, resp)
	}
	recs := testenv.ReadStream(t, c.Kinesis, changes, 3, 5*time.Second)
	if len(recs) != 3 {
		t.Fatalf("changes after redelivery: %d records, want one per profile", len(recs))
	}
	got := map[string]string{} // messageId → profile
	for _, r := range recs {
		var ch change.Record
		if err := json.Unmarshal(r.Data, &ch); err != nil {
			t.Fatal(err)
		}
		if aws.ToString(r.PartitionKey) != ch.ProfileID || ch.Created || len(ch.ChangedTraits) != 0 || len(ch.AddedIdentifiers) != 0 {
			t.Fatalf("change record: %+v", ch)
		}
		p, err := st.Profile(ctx, ch.ProfileID)
		if err != nil || p == nil || p.ID != ch.ProfileID || p.Version != ch.Version || len(ch.Identifiers) != len(p.Identifiers) {
			t.Fatalf("record %+v does not describe the stored profile %+v (%v)", ch, p, err)
		}
		if b, _ := json.Marshal(ch.Traits); string(b) != traitsJSON(p) {
			t.Fatalf("traits %s, stored %s", b, traitsJSON(p))
		}
		for _, ev := range ch.Events {
			if _, dup := got[ev.MessageID]; dup {
				t.Fatalf("event %s emitted twice in one batch", ev.MessageID)
			}
			got[ev.MessageID] = ch.ProfileID
		}
	}
	want := map[string]string{
		"r1": e.byID(t, "user_id:u1").ID, "r2": e.byID(t, "user_id:u1").ID,
		"r3": e.byID(t, "anonymous_id:a2").ID, "r5": e.byID(t, "anonymous_id:a2").ID,
		"r4": e.byID(t, "user_id:u2").ID,
	}
	for mid, pid := range want {
		if got[mid] != pid {
			t.Fatalf("event %s emitted for %q, want %q (all: %v)", mid, got[mid], pid, got)
		}
	}
	after := e.liveProfiles(t)
	for i := range before {
		if after[i].ID != before[i].ID || after[i].Version != before[i].Version || after[i].EventCount != before[i].EventCount {
			t.Fatalf("redelivery changed profile %s: before %+v after %+v", before[i].ID, before[i], after[i])
		}
	}
	if p := e.byID(t, "user_id:u1"); p.EventCount != 2 {
		t.Fatalf("u1 event count %d", p.EventCount)
	}
}
