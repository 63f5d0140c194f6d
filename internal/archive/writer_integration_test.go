//go:build integration

package archive

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/serverless-cdp/cdp/internal/emulator/testenv"
	"github.com/serverless-cdp/cdp/internal/stream"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

// TestWriterOnTheEventsStream: N events and two invalid records published to a two-shard
// stream on kinesis-mock, archived by the Writer behind the local poller (whose retries start
// at a failed batch's first record) over a store whose first write of every fifth object
// fails, then archived again by a poller that starts over from the start of the stream: each
// messageId is in the archive exactly once, on the folder and on the S3-compatible server.
func TestWriterOnTheEventsStream(t *testing.T) {
	forEachStore(t, func(t *testing.T, st Store) {
		c := testenv.Clients(t)
		name := testenv.Stream(t, c.Kinesis, "events", 2)
		const n = 500
		var out []stream.Record
		for i := range n {
			src := []string{"src_web", "src_pos", "src_crm"}[i%3]
			out = append(out, stream.Record{PartitionKey: fmt.Sprint("u", i%23), Data: eventData(src, fmt.Sprint("m-", i), fmt.Sprint("u", i%23), t0)})
		}
		out = append(out, stream.Record{PartitionKey: "x", Data: []byte("not json")}, stream.Record{PartitionKey: "y", Data: []byte(`{"message":{"messageId":"z"}}`)})
		if err := stream.NewPublisher(c.Kinesis, name).Put(context.Background(), out); err != nil {
			t.Fatal(err)
		}
		fs := &flakyStore{Store: st, seen: map[string]bool{}}
		runPoller(t, name, &Writer{Store: fs, Logger: quiet}, len(out))
		if fs.failed == 0 {
			t.Fatal("no write failed: the run must include retries")
		}
		assertOnceEach(t, st, n)
		runPoller(t, name, &Writer{Store: st, Logger: quiet}, len(out)) // from the start again
		assertOnceEach(t, st, n)
		invalid := 0
		for _, key := range listAll(t, st, "source="+InvalidSource+"/") {
			body, _ := st.Get(context.Background(), key)
			_ = Lines(body, func([]byte) error { invalid++; return nil })
		}
		if invalid != 2 {
			t.Fatalf("%d invalid records kept, want 2", invalid)
		}
	})
}

// runPoller runs a poller over the stream from its start until the Writer has archived want
// records in batches that succeeded.
func runPoller(t *testing.T, name string, w *Writer, want int) {
	t.Helper()
	clients := testenv.Clients(t)
	var done atomic.Int64
	h := func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
		resp, err := w.Handle(ctx, ev)
		if err == nil && len(resp.BatchItemFailures) == 0 {
			done.Add(int64(len(ev.Records)))
		}
		return resp, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &stream.Poller{Client: clients.Kinesis, Stream: name, Handler: h, BatchSize: 37, Interval: 20 * time.Millisecond, Logger: quiet}
	stopped := make(chan struct{})
	go func() { _ = p.Run(ctx); close(stopped) }()
	defer func() { cancel(); <-stopped }()
	deadline := time.Now().Add(60 * time.Second)
	for done.Load() < int64(want) {
		if time.Now().After(deadline) {
			t.Fatalf("archived %d of %d records within 60 s", done.Load(), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// assertOnceEach scans the archive: n distinct messageIds, each once.
func assertOnceEach(t *testing.T, st Store, n int) {
	t.Helper()
	seen := map[string]int{}
	now := time.Now().UTC()
	err := Scan(context.Background(), st, Range{From: now.Add(-2 * time.Hour), To: now.Add(time.Hour)}, func(_ string, r tracking.Record) error {
		seen[r.SourceID+"/"+r.Message.MessageID]++
		return nil
	}, func(key string, line []byte, err error) error {
		t.Errorf("%s: bad line %s: %v", key, line, err)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for k, c := range seen {
		if c != 1 {
			t.Errorf("%s archived %d times", k, c)
		}
	}
	if len(seen) != n {
		t.Fatalf("%d distinct records archived, want %d", len(seen), n)
	}
}
