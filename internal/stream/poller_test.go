//go:build integration

package stream_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/serverless-cdp/cdp/internal/awsenv"
	"github.com/serverless-cdp/cdp/internal/emulator/testenv"
	"github.com/serverless-cdp/cdp/internal/stream"
)

// TestPollerHonoursBatchItemFailures: like a Lambda event source mapping with
// ReportBatchItemFailures, a reported failure is retried from that record on, and nothing before
// it is delivered again.
func TestPollerHonoursBatchItemFailures(t *testing.T) {
	c := testenv.Clients(t)
	name := testenv.Stream(t, c.Kinesis, "poll", 1)
	recs := make([]stream.Record, 10)
	for i := range recs {
		recs[i] = stream.Record{PartitionKey: "k", Data: []byte(fmt.Sprintf("r%d", i))}
	}
	if err := stream.NewPublisher(c.Kinesis, name).Put(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	done := map[string]bool{}
	failedOnce := false
	ctx, cancel := context.WithCancel(context.Background())
	p := &stream.Poller{
		Client: c.Kinesis, Stream: name, BatchSize: 100, Interval: 20 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Handler: func(_ context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
			mu.Lock()
			defer mu.Unlock()
			var resp events.KinesisEventResponse
			for _, r := range ev.Records {
				d := string(r.Kinesis.Data)
				seen[d]++
				if d == "r5" && !failedOnce {
					failedOnce = true
					resp.BatchItemFailures = append(resp.BatchItemFailures, events.KinesisBatchItemFailure{ItemIdentifier: r.Kinesis.SequenceNumber})
					continue
				}
				done[d] = true
			}
			if len(done) == 10 {
				cancel()
			}
			return resp, nil
		},
	}
	go p.Run(ctx)
	select {
	case <-ctx.Done():
	case <-time.After(15 * time.Second):
		cancel()
		t.Fatal("not every record was processed")
	}
	mu.Lock()
	defer mu.Unlock()
	for i := 0; i < 10; i++ {
		want := 1
		if i >= 5 {
			want = 2 // redelivered from the failed record on, as Lambda does
		}
		if got := seen[fmt.Sprintf("r%d", i)]; got != want {
			t.Fatalf("r%d delivered %d times, want %d (all: %v)", i, got, want, seen)
		}
	}
}

// pollerHarness runs a poller in the background and records what its handler saw.
type pollerHarness struct {
	mu     sync.Mutex
	seen   map[string]int
	fail   func(data string) bool // report this record as failed
	cancel context.CancelFunc
	done   chan struct{}
}

func startPoller(t *testing.T, c awsenv.Clients, name, table string, fail func(string) bool) *pollerHarness {
	t.Helper()
	h := &pollerHarness{seen: map[string]int{}, fail: fail, done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	p := &stream.Poller{
		Client: c.Kinesis, Stream: name, BatchSize: 100, Interval: 20 * time.Millisecond, RetryInterval: 50 * time.Millisecond,
		MaxRetries: 1000, Consumer: "test", Checkpoints: stream.NewTableCheckpoints(c.DynamoDB, table),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Handler: func(_ context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			var resp events.KinesisEventResponse
			for _, r := range ev.Records {
				d := string(r.Kinesis.Data)
				h.seen[d]++
				if h.fail != nil && h.fail(d) {
					resp.BatchItemFailures = append(resp.BatchItemFailures, events.KinesisBatchItemFailure{ItemIdentifier: r.Kinesis.SequenceNumber})
					break
				}
			}
			return resp, nil
		},
	}
	go func() { defer close(h.done); p.Run(ctx) }()
	t.Cleanup(h.stop)
	return h
}

func (h *pollerHarness) stop() {
	h.cancel()
	<-h.done
}

// waitFor polls until cond holds on what the handler saw, or fails after 20 s.
func (h *pollerHarness) waitFor(t *testing.T, what string, cond func(seen map[string]int) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		h.mu.Lock()
		ok := cond(h.seen)
		snapshot := fmt.Sprint(h.seen)
		h.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20s; seen %s", what, snapshot)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func publish(t *testing.T, c awsenv.Clients, name string, from, to int) {
	t.Helper()
	var recs []stream.Record
	for i := from; i < to; i++ {
		recs = append(recs, stream.Record{PartitionKey: "k", Data: []byte(fmt.Sprintf("r%d", i))})
	}
	if err := stream.NewPublisher(c.Kinesis, name).Put(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
}

func all(from, to int) func(map[string]int) bool {
	return func(seen map[string]int) bool {
		for i := from; i < to; i++ {
			if seen[fmt.Sprintf("r%d", i)] == 0 {
				return false
			}
		}
		return true
	}
}

// TestPollerResumesFromCheckpoint: a poller started again with the same checkpoints reads only
// what it had not handled (before, every restart re-read the stream from TRIM_HORIZON); and a
// batch that reported a failure is checkpointed only up to the record before it.
func TestPollerResumesFromCheckpoint(t *testing.T) {
	c := testenv.Clients(t)
	table := testenv.Table(t, c.DynamoDB)
	name := testenv.Stream(t, c.Kinesis, "ckpt", 1)
	publish(t, c, name, 0, 10)
	first := startPoller(t, c, name, table, nil)
	first.waitFor(t, "first run", all(0, 10))
	first.stop()

	publish(t, c, name, 10, 20)
	// r15 keeps failing: r10..r14 are checkpointed, r15 on are not.
	second := startPoller(t, c, name, table, func(d string) bool { return d == "r15" })
	second.waitFor(t, "second run", func(seen map[string]int) bool { return all(10, 16)(seen) && seen["r15"] >= 3 })
	second.stop()
	for i := 0; i < 10; i++ {
		if n := second.seen[fmt.Sprintf("r%d", i)]; n != 0 {
			t.Fatalf("restart re-read r%d (%d times): %v", i, n, second.seen)
		}
	}

	third := startPoller(t, c, name, table, nil)
	third.waitFor(t, "third run", all(15, 20))
	third.stop()
	for i := 0; i < 15; i++ {
		if n := third.seen[fmt.Sprintf("r%d", i)]; n != 0 {
			t.Fatalf("third run re-read r%d, checkpointed before the failure: %v", i, third.seen)
		}
	}
}

// TestPollerFollowsRecreatedStream: when the stream is deleted and created again under the same
// name (what an emulator restart does), a running poller re-lists the shards and reads the new
// stream from its start, ignoring the old stream's checkpoint. (Before, it kept failing.)
func TestPollerFollowsRecreatedStream(t *testing.T) {
	c := testenv.Clients(t)
	table := testenv.Table(t, c.DynamoDB)
	name := testenv.Stream(t, c.Kinesis, "recreate", 1)
	publish(t, c, name, 0, 5)
	h := startPoller(t, c, name, table, nil)
	h.waitFor(t, "before", all(0, 5))
	ctx := context.Background()
	if _, err := c.Kinesis.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
	w := kinesis.NewStreamNotExistsWaiter(c.Kinesis, func(o *kinesis.StreamNotExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = 50*time.Millisecond, time.Second
	})
	if err := w.Wait(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String(name)}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := stream.CreateStream(ctx, c.Kinesis, name, 1); err != nil {
		t.Fatal(err)
	}
	publish(t, c, name, 5, 10)
	h.waitFor(t, "after recreation", all(5, 10))
}

// TestPollerGivesHandlersADeadline: like Lambda, each invocation's context carries the
// function's timeout.
func TestPollerGivesHandlersADeadline(t *testing.T) {
	c := testenv.Clients(t)
	name := testenv.Stream(t, c.Kinesis, "deadline", 1)
	publish(t, c, name, 0, 1)
	got := make(chan time.Duration, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := &stream.Poller{
		Client: c.Kinesis, Stream: name, Interval: 20 * time.Millisecond, Timeout: 7 * time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Handler: func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
			d, ok := ctx.Deadline()
			if !ok {
				d = time.Time{}
			}
			select {
			case got <- time.Until(d):
			default:
			}
			return events.KinesisEventResponse{}, nil
		},
	}
	go p.Run(ctx)
	select {
	case left := <-got:
		if left <= 6*time.Second || left > 7*time.Second {
			t.Fatalf("handler had %s left, want about 7s", left)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("handler not called")
	}
}

// TestPollerNeverSkipsWithoutOnFailure: a record that keeps failing is retried until the
// on-failure destination takes it — alone — and then the records after it go on; while the
// destination refuses it (its store is down too), nothing is skipped. (Before, a batch was
// dropped with a log line after 5 quick retries, whatever it held.)
func TestPollerNeverSkipsWithoutOnFailure(t *testing.T) {
	c := testenv.Clients(t)
	name := testenv.Stream(t, c.Kinesis, "onfailure", 1)
	publish(t, c, name, 0, 10)
	var mu sync.Mutex
	seen := map[string]int{}
	var given []string
	refusals := 0
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := &stream.Poller{
		Client: c.Kinesis, Stream: name, Interval: 20 * time.Millisecond, MaxRetries: 2,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Handler: func(_ context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
			mu.Lock()
			defer mu.Unlock()
			var resp events.KinesisEventResponse
			for _, r := range ev.Records {
				seen[string(r.Kinesis.Data)]++
				if string(r.Kinesis.Data) == "r3" {
					resp.BatchItemFailures = append(resp.BatchItemFailures, events.KinesisBatchItemFailure{ItemIdentifier: r.Kinesis.SequenceNumber})
					break
				}
			}
			return resp, nil
		},
		OnFailure: func(_ context.Context, recs []events.KinesisEventRecord, _ string) error {
			mu.Lock()
			defer mu.Unlock()
			if refusals < 2 {
				refusals++
				return fmt.Errorf("store down")
			}
			for _, r := range recs {
				given = append(given, string(r.Kinesis.Data))
			}
			return nil
		},
	}
	go p.Run(ctx)
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		done := seen["r9"] > 0
		mu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("r9 never delivered: %v", seen)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(given) != "[r3]" {
		t.Fatalf("on-failure destination got %v, want r3 alone", given)
	}
	if seen["r3"] < 5 { // 3 tries, then 2 more while the destination refused
		t.Fatalf("r3 tried %d times before being handed over", seen["r3"])
	}
	for i := 4; i < 10; i++ {
		if seen[fmt.Sprintf("r%d", i)] != 1 {
			t.Fatalf("r%d delivered %d times: %v", i, seen[fmt.Sprintf("r%d", i)], seen)
		}
	}
}

// TestPollerOutageDoesNotSpendRetries: while the store is down, both the handler and the
// on-failure destination fail; a failure of the handler just as the store comes back must not
// dead-letter the record, which is handled on a later try. (Before, the retries counted during
// the outage were never reset, so that first failure sent the record to the on-failure
// destination, and it was never handled: an event lost in a DynamoDB Local restart.)
func TestPollerOutageDoesNotSpendRetries(t *testing.T) {
	c := testenv.Clients(t)
	name := testenv.Stream(t, c.Kinesis, "outage", 1)
	publish(t, c, name, 0, 5)
	var mu sync.Mutex
	seen := map[string]int{}
	var given []string
	down, failOnceMore, refusals := true, false, 0
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := &stream.Poller{
		Client: c.Kinesis, Stream: name, Interval: 20 * time.Millisecond, MaxRetries: 2,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Handler: func(_ context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
			mu.Lock()
			defer mu.Unlock()
			if down || failOnceMore {
				failOnceMore = down && failOnceMore
				return events.KinesisEventResponse{}, fmt.Errorf("store down")
			}
			for _, r := range ev.Records {
				seen[string(r.Kinesis.Data)]++
			}
			return events.KinesisEventResponse{}, nil
		},
		OnFailure: func(_ context.Context, recs []events.KinesisEventRecord, _ string) error {
			mu.Lock()
			defer mu.Unlock()
			if down {
				if refusals++; refusals == 2 {
					down, failOnceMore = false, true // back, but the handler's call in flight fails
				}
				return fmt.Errorf("store down")
			}
			for _, r := range recs {
				given = append(given, string(r.Kinesis.Data))
			}
			return nil
		},
	}
	go p.Run(ctx)
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		done := all(0, 5)(seen) || len(given) > 0
		mu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("records never handled: %v", seen)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	mu.Lock()
	defer mu.Unlock()
	if len(given) > 0 {
		t.Fatalf("on-failure destination got %v after the store came back; want every record handled", given)
	}
}
