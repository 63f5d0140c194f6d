package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/serverless-cdp/cdp/internal/budget"
)

// Handler is the signature of a Lambda Kinesis handler that reports partial batch failures.
type Handler func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error)

// Poller reads every shard of one stream and calls a handler with events.KinesisEvent batches,
// behaving like a Lambda event source mapping with ReportBatchItemFailures: a failed batch is
// retried from the first failed record; after MaxRetries that record alone goes to OnFailure
// (on AWS, bisection and the on-failure destination) and the rest of the shard goes on. If
// OnFailure is not set or fails (the store is down too), nothing is skipped: the batch is
// retried, at most every 3 s, until the handler or OnFailure succeeds. Handlers keep their own dead letters, so
// this only happens when a handler itself is broken or its storage is unreachable.
//
// Like an event source mapping, it keeps a checkpoint per shard (in Checkpoints, when set)
// written after a batch's handler returned: up to the batch's last record, or up to the record
// before the first reported failure. A poller started again resumes after its checkpoint. When
// the stream disappears or is created again (an emulator restart), the poller keeps trying,
// re-lists the shards and resumes: from its position if the stream survived, else from the
// start of the new stream.
type Poller struct {
	Client     *kinesis.Client
	Stream     string
	Handler    Handler
	BatchSize  int32
	Interval   time.Duration // wait when a shard has nothing new
	MaxRetries int
	Logger     *slog.Logger
	// Consumer names the function reading the stream (checkpoints are per consumer).
	Consumer    string
	Checkpoints Checkpoints // nil: start from TRIM_HORIZON every time
	// Timeout, if set, is the deadline each handler invocation gets, like the function's
	// configured timeout on Lambda.
	Timeout time.Duration
	// RetryInterval is the wait before describing the stream again after an error (1 s).
	RetryInterval time.Duration
	// OnFailure receives the records of a batch that still failed after MaxRetries (from the
	// first failed one on), with the cause; it runs on a context that is not cancelled.
	OnFailure func(ctx context.Context, recs []events.KinesisEventRecord, cause string) error
	// Wake, if set, ends an idle shard's wait for new records early (see Doorbell). With it,
	// the wait doubles after each empty read, from Interval up to MaxIdle, and stays there: the
	// doorbell brings the records of the process's own writers at once, so the timed reads are
	// only for records written by others, and an idle stream costs few reads.
	Wake *Doorbell
	// MaxIdle bounds the idle wait with Wake (default 1 s, like an event source mapping's
	// polling of an idle shard; never below Interval).
	MaxIdle time.Duration

	mu  sync.Mutex
	pos map[string]string // shard → last handled sequence number, in the current epoch
}

// errShardClosed ends a shard's loop when the shard was closed by resharding.
var errShardClosed = errors.New("shard closed")

// Run polls until ctx is cancelled. While the stream cannot be described (not created yet,
// emulator down) it retries every RetryInterval.
func (p *Poller) Run(ctx context.Context) error {
	p.defaults()
	epoch, failing := "", false
	closed := map[string]bool{}
	for ctx.Err() == nil {
		desc, err := p.Client.DescribeStream(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String(p.Stream)})
		if err != nil {
			if !failing && ctx.Err() == nil {
				p.Logger.Warn("describe stream; retrying", "stream", p.Stream, "err", err)
			}
			failing = true
			pause(ctx, p.RetryInterval)
			continue
		}
		if failing {
			p.Logger.Info("stream reachable again", "stream", p.Stream)
			failing = false
		}
		if e := streamEpoch(desc.StreamDescription); e != epoch {
			epoch, closed = e, map[string]bool{}
			p.mu.Lock()
			p.pos = map[string]string{}
			p.mu.Unlock()
		}
		if !p.round(ctx, desc.StreamDescription, epoch, closed) {
			failing = true
		}
		pause(ctx, p.RetryInterval)
	}
	return nil
}

// round reads every open shard until ctx ends or one shard fails (the stream may be gone); it
// reports whether it ended without error.
func (p *Poller) round(ctx context.Context, d *types.StreamDescription, epoch string, closed map[string]bool) bool {
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	arn := aws.ToString(d.StreamARN)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := true
	for _, sh := range d.Shards {
		id := aws.ToString(sh.ShardId)
		if closed[id] {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := p.runShard(rctx, arn, id, epoch)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, errShardClosed):
				closed[id] = true
			case err != nil && rctx.Err() == nil:
				p.Logger.Warn("shard interrupted; listing shards again", "stream", p.Stream, "shard", id, "err", err)
				ok = false
				cancel()
			}
		}()
	}
	watched := make(chan bool, 1)
	go func() { watched <- p.watchEpoch(rctx, epoch, cancel) }()
	wg.Wait()
	cancel()
	return ok && <-watched
}

// watchEpoch describes the stream every few seconds while a round runs and ends the round
// (reporting false) when the stream is gone or was created again under the same name: a
// shard iterator of the old stream may keep answering "nothing new" and never fail.
func (p *Poller) watchEpoch(ctx context.Context, epoch string, stop context.CancelFunc) bool {
	for {
		pause(ctx, 5*p.RetryInterval)
		if ctx.Err() != nil {
			return true
		}
		desc, err := p.Client.DescribeStream(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String(p.Stream)})
		if ctx.Err() != nil {
			return true
		}
		if err != nil || streamEpoch(desc.StreamDescription) != epoch {
			p.Logger.Warn("stream gone or created again; listing shards again", "stream", p.Stream, "err", err)
			stop()
			return false
		}
	}
}

// streamEpoch identifies one incarnation of a stream: a stream deleted and created again under
// the same name (kinesis-mock restarted) has another creation time and other sequence numbers.
func streamEpoch(d *types.StreamDescription) string {
	e := strconv.FormatInt(aws.ToTime(d.StreamCreationTimestamp).UnixNano(), 10)
	if len(d.Shards) > 0 && d.Shards[0].SequenceNumberRange != nil {
		e += "/" + aws.ToString(d.Shards[0].SequenceNumberRange.StartingSequenceNumber)
	}
	return e
}

func (p *Poller) defaults() {
	if p.BatchSize == 0 {
		p.BatchSize = 100
	}
	if p.Interval == 0 {
		p.Interval = 200 * time.Millisecond
	}
	if p.RetryInterval == 0 {
		p.RetryInterval = time.Second
	}
	if p.MaxIdle == 0 {
		p.MaxIdle = time.Second
	}
	p.MaxIdle = max(p.MaxIdle, p.Interval)
	if p.MaxRetries == 0 {
		p.MaxRetries = 5
	}
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	if p.Consumer == "" {
		p.Consumer = "default"
	}
}

// start is where a shard resumes: after the last handled record of this epoch, from the
// poller's memory or its checkpoint; "" means from the start of the shard.
func (p *Poller) start(ctx context.Context, shardID, epoch string) string {
	p.mu.Lock()
	seq, ok := p.pos[shardID]
	p.mu.Unlock()
	if ok || p.Checkpoints == nil {
		return seq
	}
	cp, found, err := p.Checkpoints.Load(ctx, p.Stream, shardID, p.Consumer)
	if err != nil {
		p.Logger.Warn("load checkpoint; starting from the oldest record", "stream", p.Stream, "shard", shardID, "err", err)
		return ""
	}
	if !found || cp.Epoch != epoch {
		return ""
	}
	return cp.Sequence
}

// commit records that every record of the shard up to seq was handled. The checkpoint write is
// bookkeeping: it runs even when ctx is being cancelled, with its own short timeout.
func (p *Poller) commit(ctx context.Context, shardID, epoch, seq string) {
	p.mu.Lock()
	p.pos[shardID] = seq
	p.mu.Unlock()
	if p.Checkpoints == nil {
		return
	}
	cctx, cancel := budget.Bookkeeping(ctx, 5*time.Second)
	defer cancel()
	if err := p.Checkpoints.Save(cctx, p.Stream, shardID, p.Consumer, Checkpoint{Sequence: seq, Epoch: epoch}); err != nil {
		p.Logger.Warn("save checkpoint", "stream", p.Stream, "shard", shardID, "err", err)
	}
}

// runShard polls one shard until ctx ends (nil), the shard is closed (errShardClosed) or a call
// fails (the error; the caller lists the shards again and resumes from the last position).
func (p *Poller) runShard(ctx context.Context, arn, shardID, epoch string) error {
	log := p.Logger.With("stream", p.Stream, "shard", shardID)
	iter, err := p.iterator(ctx, shardID, p.start(ctx, shardID, epoch))
	if err != nil {
		return err
	}
	retries, wait := 0, p.Interval
	for ctx.Err() == nil {
		// Taken before the read: a ring while it runs ends the idle wait after it at once.
		rung := p.Wake.c(shardID)
		out, err := p.Client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(p.BatchSize)})
		var throttled *types.ProvisionedThroughputExceededException
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.As(err, &throttled):
			pause(ctx, p.Interval)
			continue
		case err != nil:
			return fmt.Errorf("get records: %w", err)
		case len(out.Records) == 0 && out.NextShardIterator == nil:
			return errShardClosed
		case len(out.Records) == 0:
			iter = out.NextShardIterator
			idle(ctx, wait, rung)
			if p.Wake != nil {
				wait = min(2*wait, p.MaxIdle)
			}
			continue
		}
		last := aws.ToString(out.Records[len(out.Records)-1].SequenceNumber)
		ev := toEvent(arn, shardID, out.Records)
		failedSeq := p.invoke(ctx, log, ev)
		if failedSeq == "" {
			retries = 0
			p.commit(ctx, shardID, epoch, last)
			iter = out.NextShardIterator
			if p.caughtUp(out) {
				idle(ctx, wait, rung) // the next read would find nothing, unless the doorbell rang
			}
			continue
		}
		if retries >= p.MaxRetries {
			if p.giveUp(ctx, log, ev, failedSeq) {
				// The failed record went to the on-failure destination alone; the rest go on.
				retries = 0
				p.commit(ctx, shardID, epoch, failedSeq)
				if iter, err = p.iterator(ctx, shardID, failedSeq); err != nil {
					return err
				}
				continue
			}
			// The destination is down too: an outage, not a bad record. Count afresh, so the
			// first failure once the store is back does not dead-letter a record at once.
			retries = 0
		}
		retries++
		if before := sequenceBefore(out.Records, failedSeq); before != "" {
			p.commit(ctx, shardID, epoch, before)
		}
		pause(ctx, min(time.Duration(retries)*100*time.Millisecond, 3*time.Second))
		if iter, err = p.iteratorAt(ctx, shardID, failedSeq); err != nil {
			return err
		}
	}
	return nil
}

// caughtUp reports whether a read returned the shard's newest record, so that with a doorbell
// the next read can wait for it (an empty read saved: on kinesis-mock it costs as much CPU as a
// write).
func (p *Poller) caughtUp(out *kinesis.GetRecordsOutput) bool {
	return p.Wake != nil && out.MillisBehindLatest != nil && *out.MillisBehindLatest == 0 && len(out.Records) < int(p.BatchSize)
}

// giveUp hands the first failed record of a batch to OnFailure and reports whether it was taken
// (the shard may move on past it); without OnFailure, or when it fails, nothing is skipped.
func (p *Poller) giveUp(ctx context.Context, log *slog.Logger, ev events.KinesisEvent, failedSeq string) bool {
	if p.OnFailure == nil {
		log.Error("batch still failing after retries; retrying (no on-failure destination)", "from_sequence", failedSeq)
		return false
	}
	var recs []events.KinesisEventRecord
	for i, r := range ev.Records {
		if r.Kinesis.SequenceNumber == failedSeq {
			recs = ev.Records[i : i+1]
			break
		}
	}
	cctx, cancel := budget.Bookkeeping(ctx, 10*time.Second)
	defer cancel()
	if err := p.OnFailure(cctx, recs, fmt.Sprintf("batch failed %d times", p.MaxRetries+1)); err != nil {
		log.Error("batch still failing and the on-failure destination refused it; retrying", "from_sequence", failedSeq, "err", err)
		return false
	}
	log.Error("record failed after retries; it went to the on-failure destination", "sequence", failedSeq)
	return true
}

// sequenceBefore is the sequence number of the record just before seq, "" if seq is the first.
func sequenceBefore(recs []types.Record, seq string) string {
	prev := ""
	for _, r := range recs {
		if aws.ToString(r.SequenceNumber) == seq {
			return prev
		}
		prev = aws.ToString(r.SequenceNumber)
	}
	return ""
}

// invoke calls the handler and returns the sequence number to resume from, or "" on success.
func (p *Poller) invoke(ctx context.Context, log *slog.Logger, ev events.KinesisEvent) string {
	if p.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.Timeout)
		defer cancel()
	}
	resp, err := p.Handler(ctx, ev)
	if err != nil {
		log.Warn("handler failed; batch will be retried", "err", err)
		return ev.Records[0].Kinesis.SequenceNumber
	}
	if len(resp.BatchItemFailures) == 0 {
		return ""
	}
	// Like Lambda: resume at the lowest failed sequence number (records are in order).
	failed := make(map[string]bool, len(resp.BatchItemFailures))
	for _, f := range resp.BatchItemFailures {
		failed[f.ItemIdentifier] = true
	}
	for _, r := range ev.Records {
		if failed[r.Kinesis.SequenceNumber] {
			return r.Kinesis.SequenceNumber
		}
	}
	// An identifier that matches no record fails the whole batch, as Lambda does.
	return ev.Records[0].Kinesis.SequenceNumber
}

// iterator starts after seq, or at the oldest record when seq is "".
func (p *Poller) iterator(ctx context.Context, shardID, seq string) (*string, error) {
	if seq == "" {
		return p.shardIterator(ctx, shardID, types.ShardIteratorTypeTrimHorizon, "")
	}
	return p.shardIterator(ctx, shardID, types.ShardIteratorTypeAfterSequenceNumber, seq)
}

// iteratorAt starts at seq (to retry a failed record).
func (p *Poller) iteratorAt(ctx context.Context, shardID, seq string) (*string, error) {
	return p.shardIterator(ctx, shardID, types.ShardIteratorTypeAtSequenceNumber, seq)
}

func (p *Poller) shardIterator(ctx context.Context, shardID string, typ types.ShardIteratorType, seq string) (*string, error) {
	in := &kinesis.GetShardIteratorInput{StreamName: aws.String(p.Stream), ShardId: aws.String(shardID), ShardIteratorType: typ}
	if seq != "" {
		in.StartingSequenceNumber = aws.String(seq)
	}
	out, err := p.Client.GetShardIterator(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("get shard iterator %s: %w", shardID, err)
	}
	return out.ShardIterator, nil
}

// toEvent builds the event Lambda would deliver for these records.
func toEvent(arn, shardID string, recs []types.Record) events.KinesisEvent {
	ev := events.KinesisEvent{Records: make([]events.KinesisEventRecord, 0, len(recs))}
	for _, r := range recs {
		seq := aws.ToString(r.SequenceNumber)
		ev.Records = append(ev.Records, events.KinesisEventRecord{
			AwsRegion:      "us-east-1",
			EventID:        shardID + ":" + seq,
			EventName:      "aws:kinesis:record",
			EventSource:    "aws:kinesis",
			EventSourceArn: arn,
			EventVersion:   "1.0",
			Kinesis: events.KinesisRecord{
				ApproximateArrivalTimestamp: events.SecondsEpochTime{Time: aws.ToTime(r.ApproximateArrivalTimestamp)},
				Data:                        r.Data,
				PartitionKey:                aws.ToString(r.PartitionKey),
				SequenceNumber:              seq,
				KinesisSchemaVersion:        "1.0",
			},
		})
	}
	return ev
}

// idle waits for d, or until rung is closed (a Doorbell rang) or ctx ends.
func idle(ctx context.Context, d time.Duration, rung <-chan struct{}) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-rung:
	case <-t.C:
	}
}

func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
