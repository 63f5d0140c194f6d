package monitor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// KinesisAPI is the part of *kinesis.Client the tail reads with.
type KinesisAPI interface {
	ListShards(context.Context, *kinesis.ListShardsInput, ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
	GetShardIterator(context.Context, *kinesis.GetShardIteratorInput, ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error)
	GetRecords(context.Context, *kinesis.GetRecordsInput, ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error)
}

// Event is one record of the events stream as the Live events page shows it.
type Event struct {
	Source    string
	Sequence  string    // the record's sequence number (unique in its shard)
	Arrived   time.Time // the record's approximate arrival on the stream
	MessageID string
	Type      string
	Name      string // a track's event name, a page's or screen's name
	Replay    bool   // put back on the stream by a replay
	Payload   string // the message, indented JSON
}

// Tail reads the latest records of the events stream on demand: no store of its own, so it
// costs no request unit per event. Each read lists the shards and reads each one from a
// timestamp (the first window; a wider one when that found fewer than asked), with at most
// MaxCalls GetRecords per shard, and answers from a short cache so several open pages share
// one read (Kinesis allows 5 reads per second per shard, shared with the stream's consumers).
type Tail struct {
	Client   KinesisAPI
	Stream   string
	Windows  []time.Duration // default 1 min, 15 min
	MaxCalls int             // GetRecords (of at most 1,000 records) per shard per read; default 3
	CacheFor time.Duration   // default 2 s
	Now      func() time.Time
	// Keep, if set, says whether a record may be shown (the console drops records carrying
	// suppressed identifiers).
	Keep func(ctx context.Context, data []byte) (bool, error)

	mu     sync.Mutex
	cached map[string]tailAnswer
}

type tailAnswer struct {
	at     time.Time
	events []Event
}

// record is the stream's record (tracking.Record) as far as the tail needs it.
type record struct {
	SourceID string          `json:"sourceId"`
	Message  json.RawMessage `json:"message"`
	Replay   string          `json:"replay"`
}

type messageHead struct {
	MessageID string `json:"messageId"`
	Type      string `json:"type"`
	Event     string `json:"event"`
	Name      string `json:"name"`
}

// Latest returns the newest events, newest first, at most perSource of each source (only
// source's when it is not empty).
func (t *Tail) Latest(ctx context.Context, source string, perSource int) ([]Event, error) {
	now := t.now()
	key := fmt.Sprintf("%s\x00%d", source, perSource)
	t.mu.Lock()
	if a, ok := t.cached[key]; ok && now.Sub(a.at) < t.cacheFor() {
		t.mu.Unlock()
		return a.events, nil
	}
	t.mu.Unlock()
	windows := t.Windows
	if len(windows) == 0 {
		windows = []time.Duration{time.Minute, 15 * time.Minute}
	}
	var evs []Event
	for i, w := range windows {
		recs, err := t.read(ctx, now.Add(-w))
		if err != nil {
			return nil, err
		}
		if evs, err = t.pick(ctx, recs, source, perSource); err != nil {
			return nil, err
		}
		if len(evs) >= perSource || i == len(windows)-1 {
			break
		}
	}
	t.mu.Lock()
	if t.cached == nil || len(t.cached) > 100 {
		t.cached = map[string]tailAnswer{}
	}
	t.cached[key] = tailAnswer{at: now, events: evs}
	t.mu.Unlock()
	return evs, nil
}

func (t *Tail) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

func (t *Tail) cacheFor() time.Duration {
	if t.CacheFor > 0 {
		return t.CacheFor
	}
	return 2 * time.Second
}

// read returns every record of every shard that arrived from since on (up to MaxCalls reads
// per shard).
func (t *Tail) read(ctx context.Context, since time.Time) ([]ktypes.Record, error) {
	var shards []ktypes.Shard
	in := &kinesis.ListShardsInput{StreamName: aws.String(t.Stream)}
	for {
		out, err := t.Client.ListShards(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("monitor: list shards of %s: %w", t.Stream, err)
		}
		shards = append(shards, out.Shards...)
		if out.NextToken == nil {
			break
		}
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
	var recs []ktypes.Record
	for _, sh := range shards {
		rs, err := t.readShard(ctx, aws.ToString(sh.ShardId), since)
		if err != nil {
			return nil, err
		}
		recs = append(recs, rs...)
	}
	return recs, nil
}

// readShard reads a shard from since. When MaxCalls reads did not reach the shard's end (a busy
// stream), it reads again from a few seconds ago, so the newest records are always there.
func (t *Tail) readShard(ctx context.Context, shard string, since time.Time) ([]ktypes.Record, error) {
	recs, caughtUp, err := t.readFrom(ctx, shard, since)
	if err != nil || caughtUp {
		return recs, err
	}
	recent := t.now().Add(-recentWindow)
	if !since.Before(recent) {
		return recs, nil
	}
	newest, _, err := t.readFrom(ctx, shard, recent)
	return append(recs, newest...), err
}

// recentWindow is how far back a busy shard is read again for its newest records.
const recentWindow = 5 * time.Second

// readFrom reads at most MaxCalls pages of at most PageSize records from since; caughtUp
// reports reaching the shard's end.
func (t *Tail) readFrom(ctx context.Context, shard string, since time.Time) ([]ktypes.Record, bool, error) {
	it, err := t.Client.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(t.Stream),
		ShardId: aws.String(shard), ShardIteratorType: ktypes.ShardIteratorTypeAtTimestamp, Timestamp: aws.Time(since)})
	if err != nil {
		return nil, false, fmt.Errorf("monitor: shard iterator of %s: %w", shard, err)
	}
	calls := t.MaxCalls
	if calls <= 0 {
		calls = 3
	}
	var recs []ktypes.Record
	iter := it.ShardIterator
	for range calls {
		if iter == nil {
			return recs, true, nil // a closed shard, read to its end
		}
		out, err := t.Client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(pageSize)})
		if err != nil {
			return nil, false, fmt.Errorf("monitor: read %s: %w", shard, err)
		}
		recs = append(recs, out.Records...)
		iter = out.NextShardIterator
		if aws.ToInt64(out.MillisBehindLatest) == 0 {
			return recs, true, nil
		}
	}
	return recs, false, nil
}

// pageSize bounds one GetRecords answer (and so the memory of a read).
const pageSize = 1000

// pick decodes the records, keeps source's (all when ""), newest first, perSource of each.
func (t *Tail) pick(ctx context.Context, recs []ktypes.Record, source string, perSource int) ([]Event, error) {
	slices.SortStableFunc(recs, func(a, b ktypes.Record) int {
		return aws.ToTime(b.ApproximateArrivalTimestamp).Compare(aws.ToTime(a.ApproximateArrivalTimestamp))
	})
	per := map[string]int{}
	seen := map[string]bool{}
	var out []Event
	for _, r := range recs {
		seq := aws.ToString(r.SequenceNumber)
		if seen[seq] {
			continue // read twice (a busy shard's newest records)
		}
		seen[seq] = true
		var rec record
		if json.Unmarshal(r.Data, &rec) != nil || (source != "" && rec.SourceID != source) || per[rec.SourceID] >= perSource {
			continue
		}
		if t.Keep != nil {
			ok, err := t.Keep(ctx, r.Data)
			if err != nil {
				return nil, fmt.Errorf("monitor: check suppressions: %w", err)
			}
			if !ok {
				continue
			}
		}
		var head messageHead
		_ = json.Unmarshal(rec.Message, &head)
		var pretty bytes.Buffer
		if json.Indent(&pretty, rec.Message, "", "  ") != nil {
			pretty.Reset()
			pretty.Write(rec.Message)
		}
		name := head.Event
		if name == "" {
			name = head.Name
		}
		per[rec.SourceID]++
		out = append(out, Event{Source: rec.SourceID, Sequence: aws.ToString(r.SequenceNumber), Arrived: aws.ToTime(r.ApproximateArrivalTimestamp),
			MessageID: head.MessageID, Type: head.Type, Name: name, Replay: rec.Replay != "", Payload: pretty.String()})
	}
	return out, nil
}
