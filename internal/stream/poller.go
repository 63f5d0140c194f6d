package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// Handler is the signature of a Lambda Kinesis handler that reports partial batch failures.
type Handler func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error)

// Poller reads every shard of one stream and calls a handler with events.KinesisEvent batches,
// behaving like a Lambda event source mapping with ReportBatchItemFailures: a failed batch is
// retried from the first failed record; after MaxRetries the batch is skipped and logged (on AWS
// it would go to the on-failure destination). Handlers keep their own dead letters, so skipping
// here only happens when a handler itself is broken.
type Poller struct {
	Client     *kinesis.Client
	Stream     string
	Handler    Handler
	BatchSize  int32
	Interval   time.Duration // wait when a shard has nothing new
	MaxRetries int
	Logger     *slog.Logger
}

// Run polls until ctx is cancelled. It returns an error only if the stream cannot be described.
func (p *Poller) Run(ctx context.Context) error {
	p.defaults()
	desc, err := p.Client.DescribeStream(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String(p.Stream)})
	if err != nil {
		return fmt.Errorf("describe stream %s: %w", p.Stream, err)
	}
	arn := aws.ToString(desc.StreamDescription.StreamARN)
	var wg sync.WaitGroup
	for _, sh := range desc.StreamDescription.Shards {
		wg.Add(1)
		go func(shardID string) {
			defer wg.Done()
			p.runShard(ctx, arn, shardID)
		}(aws.ToString(sh.ShardId))
	}
	wg.Wait()
	return nil
}

func (p *Poller) defaults() {
	if p.BatchSize == 0 {
		p.BatchSize = 100
	}
	if p.Interval == 0 {
		p.Interval = 200 * time.Millisecond
	}
	if p.MaxRetries == 0 {
		p.MaxRetries = 5
	}
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
}

func (p *Poller) runShard(ctx context.Context, arn, shardID string) {
	log := p.Logger.With("stream", p.Stream, "shard", shardID)
	iter, err := p.iterator(ctx, shardID, types.ShardIteratorTypeTrimHorizon, "")
	retries := 0
	for ctx.Err() == nil {
		if err != nil {
			log.Error("shard iterator", "err", err)
			pause(ctx, time.Second)
			iter, err = p.iterator(ctx, shardID, types.ShardIteratorTypeTrimHorizon, "")
			continue
		}
		out, gerr := p.Client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(p.BatchSize)})
		if gerr != nil {
			if ctx.Err() == nil {
				log.Warn("get records", "err", gerr)
				pause(ctx, p.Interval)
			}
			var expired *types.ExpiredIteratorException
			if errors.As(gerr, &expired) {
				iter, err = p.iterator(ctx, shardID, types.ShardIteratorTypeTrimHorizon, "")
			}
			continue
		}
		if len(out.Records) == 0 {
			if out.NextShardIterator == nil {
				return // shard closed
			}
			iter = out.NextShardIterator
			pause(ctx, p.Interval)
			continue
		}
		failedSeq := p.invoke(ctx, log, toEvent(arn, shardID, out.Records))
		if failedSeq == "" {
			retries = 0
			iter = out.NextShardIterator
			continue
		}
		retries++
		if retries > p.MaxRetries {
			log.Error("batch failed after retries; skipping it", "from_sequence", failedSeq, "records", len(out.Records))
			retries = 0
			iter = out.NextShardIterator
			continue
		}
		pause(ctx, time.Duration(retries)*100*time.Millisecond)
		iter, err = p.iterator(ctx, shardID, types.ShardIteratorTypeAtSequenceNumber, failedSeq)
	}
}

// invoke calls the handler and returns the sequence number to resume from, or "" on success.
func (p *Poller) invoke(ctx context.Context, log *slog.Logger, ev events.KinesisEvent) string {
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

func (p *Poller) iterator(ctx context.Context, shardID string, typ types.ShardIteratorType, seq string) (*string, error) {
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

func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
