//go:build integration

package stream_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go/middleware"

	"github.com/serverless-cdp/cdp/internal/emulator/testenv"
	"github.com/serverless-cdp/cdp/internal/stream"
)

// TestPollerWokenByDoorbell: a shard that found nothing waits its poll interval (an hour here)
// before reading again, unless its Doorbell rings: a record published and rung for after the
// empty read is handled at once.
func TestPollerWokenByDoorbell(t *testing.T) {
	c := testenv.Clients(t)
	name := testenv.Stream(t, c.Kinesis, "bell", 1)
	emptyReads := make(chan time.Time, 100)
	watched := watchEmptyReads(c.Kinesis, emptyReads)
	var mu sync.Mutex
	var got []string
	bell := &stream.Doorbell{}
	ctx, cancel := context.WithCancel(context.Background())
	p := &stream.Poller{
		Client: watched, Stream: name, BatchSize: 100, Interval: time.Hour, Wake: bell,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Handler: func(_ context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
			mu.Lock()
			defer mu.Unlock()
			for _, r := range ev.Records {
				got = append(got, string(r.Kinesis.Data))
			}
			return events.KinesisEventResponse{}, nil
		},
	}
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	defer func() { cancel(); <-done }()

	select {
	case <-emptyReads: // the shard is now idle for an hour
	case <-time.After(20 * time.Second):
		t.Fatal("the poller never read the empty stream")
	}
	publish(t, c, name, 0, 1)
	bell.Ring()
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("record not handled within 20 s of the ring (poll interval 1 h); got %v", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// watchEmptyReads returns a client like c that sends the time of each empty GetRecords answer.
func watchEmptyReads(c *kinesis.Client, emptyReads chan<- time.Time) *kinesis.Client {
	return kinesis.New(c.Options(), func(o *kinesis.Options) {
		o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
			return s.Initialize.Add(middleware.InitializeMiddlewareFunc("emptyReads", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				out, md, err := next.HandleInitialize(ctx, in)
				if r, ok := out.Result.(*kinesis.GetRecordsOutput); ok && err == nil && len(r.Records) == 0 {
					select {
					case emptyReads <- time.Now():
					default:
					}
				}
				return out, md, err
			}), middleware.After)
		})
	})
}

// TestPollerBacksOffWhenIdle: with a doorbell, an idle shard waits twice as long after each
// empty read, up to MaxIdle (before, it read every Interval forever: on kinesis-mock an empty
// read costs about as much CPU as a write, so idle shards slowed the busy ones).
func TestPollerBacksOffWhenIdle(t *testing.T) {
	c := testenv.Clients(t)
	name := testenv.Stream(t, c.Kinesis, "idle", 1)
	emptyReads := make(chan time.Time, 100)
	const interval, maxIdle = 50 * time.Millisecond, 800 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	p := &stream.Poller{
		Client: watchEmptyReads(c.Kinesis, emptyReads), Stream: name, BatchSize: 100, Interval: interval, MaxIdle: maxIdle,
		Wake: &stream.Doorbell{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Handler: func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error) {
			return events.KinesisEventResponse{}, nil
		},
	}
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	defer func() { cancel(); <-done }()

	// Waits after reads 1..6: 50, 100, 200, 400, 800, 800 ms (timers never fire early).
	want := []time.Duration{interval, 2 * interval, 4 * interval, 8 * interval, maxIdle, maxIdle}
	var reads []time.Time
	deadline := time.After(30 * time.Second)
	for len(reads) < len(want)+1 {
		select {
		case at := <-emptyReads:
			reads = append(reads, at)
		case <-deadline:
			t.Fatalf("only %d empty reads within 30 s", len(reads))
		}
	}
	for i, w := range want {
		if gap := reads[i+1].Sub(reads[i]); gap < w {
			t.Fatalf("gap after empty read %d is %v, want at least %v (gaps grow up to MaxIdle)", i+1, gap, w)
		}
	}
	if gap := reads[len(want)].Sub(reads[len(want)-1]); gap > maxIdle+5*time.Second {
		t.Fatalf("idle wait %v went far beyond MaxIdle %v", gap, maxIdle)
	}
}

// TestPollerCaughtUpWaitsForTheDoorbell: with a doorbell, a read that returned the shard's
// newest record (MillisBehindLatest 0) is not followed by a read that would find nothing; the
// next read waits for the doorbell (or the poll interval).
func TestPollerCaughtUpWaitsForTheDoorbell(t *testing.T) {
	c := testenv.Clients(t)
	name := testenv.Stream(t, c.Kinesis, "caught", 1)
	publish(t, c, name, 0, 5)
	emptyReads := make(chan time.Time, 100)
	handled := make(chan int, 10)
	bell := &stream.Doorbell{}
	ctx, cancel := context.WithCancel(context.Background())
	p := &stream.Poller{
		Client: watchEmptyReads(c.Kinesis, emptyReads), Stream: name, BatchSize: 100, Interval: time.Hour,
		Wake: bell, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Handler: func(_ context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
			handled <- len(ev.Records)
			return events.KinesisEventResponse{}, nil
		},
	}
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	defer func() { cancel(); <-done }()

	if n := <-handled; n != 5 {
		t.Fatalf("first batch has %d records, want 5", n)
	}
	// Before, the poller read again at once and found nothing. One second of observation is
	// a bound, not a wait for something to happen: within it, no read may come.
	select {
	case at := <-emptyReads:
		t.Fatalf("an empty read at %v right after a read that had caught up", at)
	case <-time.After(time.Second):
	}
	publish(t, c, name, 5, 6)
	bell.Ring()
	select {
	case n := <-handled:
		if n != 1 {
			t.Fatalf("second batch has %d records, want 1", n)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the record rung for was not handled within 20 s")
	}
}

// TestDoorbellWakesOnlyTheShardsRungFor: a ring naming one shard wakes that shard's poller;
// the other shard of the stream, idle for an hour, does not read (before, every ring woke every
// shard, and each woken empty shard cost kinesis-mock a read).
func TestDoorbellWakesOnlyTheShardsRungFor(t *testing.T) {
	c := testenv.Clients(t)
	name := testenv.Stream(t, c.Kinesis, "shards", 2)
	emptyReads := make(chan time.Time, 100)
	handled := make(chan int, 10)
	bell := &stream.Doorbell{}
	ctx, cancel := context.WithCancel(context.Background())
	p := &stream.Poller{
		Client: watchEmptyReads(c.Kinesis, emptyReads), Stream: name, BatchSize: 100, Interval: time.Hour,
		Wake: bell, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Handler: func(_ context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
			handled <- len(ev.Records)
			return events.KinesisEventResponse{}, nil
		},
	}
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	defer func() { cancel(); <-done }()

	for i := 0; i < 2; i++ { // both shards read once at start, find nothing, and idle
		select {
		case <-emptyReads:
		case <-time.After(20 * time.Second):
			t.Fatal("the shards were not read at start")
		}
	}
	out, err := c.Kinesis.PutRecord(context.Background(), &kinesis.PutRecordInput{
		StreamName: &name, PartitionKey: aws.String("k"), Data: []byte("r0")})
	if err != nil {
		t.Fatal(err)
	}
	bell.Ring(aws.ToString(out.ShardId))
	select {
	case <-handled:
	case <-time.After(20 * time.Second):
		t.Fatal("the record rung for was not handled within 20 s")
	}
	// One second of observation is a bound, not a wait for something to happen.
	select {
	case at := <-emptyReads:
		t.Fatalf("an empty read at %v: a shard not rung for was woken", at)
	case <-time.After(time.Second):
	}
}
