//go:build integration

package identity

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/change"
	"github.com/serverless-cdp/cdp/internal/deadletter"
	"github.com/serverless-cdp/cdp/internal/emulator/testenv"
	"github.com/serverless-cdp/cdp/internal/stream"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

// TestEndToEndThroughKinesis publishes records to an events stream (twice, as an at-least-once
// producer may), lets the poller feed the handler as Lambda would, and reads the changes stream.
func TestEndToEndThroughKinesis(t *testing.T) {
	c := testenv.Clients(t)
	table := testenv.Table(t, c.DynamoDB)
	evStream := testenv.Stream(t, c.Kinesis, "events", 2)
	chStream := testenv.Stream(t, c.Kinesis, "changes", 1)
	st := NewStore(c.DynamoDB, table)
	h := NewHandler(HandlerConfig{
		Processor:   NewProcessor(st, NewRulesService(c.DynamoDB, table, 0), Options{}),
		Store:       st,
		Changes:     stream.NewPublisher(c.Kinesis, chStream),
		DeadLetters: deadletter.NewStore(c.DynamoDB, table),
	})
	recs := []tracking.Record{
		rec("page", "e1", 0, f{"aid": "anon"}),
		rec("identify", "e2", 1, f{"uid": "u", "aid": "anon", "traits": `{"email":"e@x.io"}`}),
		rec("track", "e3", 2, f{"uid": "u", "event": "Paid"}),
	}
	var out []stream.Record
	for _, r := range append(recs, recs...) {
		b, _ := json.Marshal(r)
		out = append(out, stream.Record{PartitionKey: r.Message.PartitionKey(), Data: b})
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := stream.NewPublisher(c.Kinesis, evStream).Put(ctx, out); err != nil {
		t.Fatal(err)
	}
	p := &stream.Poller{Client: c.Kinesis, Stream: evStream, Handler: h.Handle, Interval: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)}
	done := make(chan struct{})
	go func() { _ = p.Run(ctx); close(done) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		prof, err := st.Lookup(context.Background(), Identifier{TypeUserID, "u"})
		if err == nil && prof != nil && prof.EventCount == 3 && prof.Has(Identifier{TypeAnonymousID, "anon"}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("profile not complete: %+v %v", prof, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	<-done
	events := map[string]int{}
	for _, r := range testenv.ReadStream(t, c.Kinesis, chStream, 1, 5*time.Second) {
		var ch change.Record
		if err := json.Unmarshal(r.Data, &ch); err != nil {
			t.Fatal(err)
		}
		for _, e := range ch.Events {
			events[e.MessageID]++
		}
	}
	if len(events) != 3 || events["e1"] != 1 || events["e2"] != 1 || events["e3"] != 1 {
		t.Fatalf("changes carried events %v, want each of e1..e3 once", events)
	}
}
