// Package stream is the Kinesis adapter: a publisher that writes records with PutRecords and
// retries partial failures, stream creation for local runs and tests, and a poller that feeds
// records to Lambda-style handlers the way an event source mapping does.
package stream

import (
	"context"
	"fmt"
	"github.com/serverless-cdp/cdp/internal/backoff"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// Kinesis service limits for one PutRecords call.
const (
	MaxRecordsPerPut = 500
	MaxBytesPerPut   = 5 << 20
	MaxRecordBytes   = 1 << 20
	maxPartitionKey  = 256
)

// PutRecordsAPI is the part of the Kinesis client the publisher uses; tests wrap the real client
// here to inject partial failures.
type PutRecordsAPI interface {
	PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error)
}

// Record is one record to publish.
type Record struct {
	PartitionKey string
	Data         []byte
}

// Publisher writes records to one stream.
type Publisher struct {
	api         PutRecordsAPI
	stream      string
	maxAttempts int
	baseDelay   time.Duration
	maxDelay    time.Duration
}

// PublisherOption tunes retries.
type PublisherOption func(*Publisher)

// WithRetry sets how many times a failed record is attempted in all, and the backoff bounds.
func WithRetry(attempts int, base, max time.Duration) PublisherOption {
	return func(p *Publisher) { p.maxAttempts, p.baseDelay, p.maxDelay = attempts, base, max }
}

// NewPublisher returns a publisher for the named stream.
func NewPublisher(api PutRecordsAPI, streamName string, opts ...PublisherOption) *Publisher {
	p := &Publisher{api: api, stream: streamName, maxAttempts: 6, baseDelay: 50 * time.Millisecond, maxDelay: time.Second}
	for _, o := range opts {
		o(p)
	}
	return p
}

// PutError reports records that could not be written after every retry.
type PutError struct {
	Failed    int
	Total     int
	ErrorCode string // the last per-record error code, e.g. ProvisionedThroughputExceededException
	Err       error  // the last whole-call error, if any
}

func (e *PutError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("put records: %d of %d not written: %v", e.Failed, e.Total, e.Err)
	}
	return fmt.Sprintf("put records: %d of %d not written: %s", e.Failed, e.Total, e.ErrorCode)
}

func (e *PutError) Unwrap() error { return e.Err }

// Put writes every record, in as few PutRecords calls as the limits allow, retrying the records
// (and only the records) that failed. It returns nil only if every record is in the stream.
// Records that were written stay written even when Put fails; consumers dedupe by message id.
func (p *Publisher) Put(ctx context.Context, recs []Record) error {
	pending := make([]types.PutRecordsRequestEntry, 0, len(recs))
	for _, r := range recs {
		if len(r.Data)+len(r.PartitionKey) > MaxRecordBytes {
			return fmt.Errorf("put records: record of %d bytes exceeds the 1 MiB Kinesis limit", len(r.Data))
		}
		pending = append(pending, types.PutRecordsRequestEntry{Data: r.Data, PartitionKey: aws.String(PartitionKey(r.PartitionKey))})
	}
	var lastCode string
	var lastErr error
	for attempt := 1; len(pending) > 0; attempt++ {
		var failed []types.PutRecordsRequestEntry
		for _, chunk := range chunks(pending) {
			out, err := p.api.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(p.stream), Records: chunk})
			if err != nil {
				lastErr = err
				failed = append(failed, chunk...)
				continue
			}
			if out.FailedRecordCount == nil || *out.FailedRecordCount == 0 {
				continue
			}
			for i, res := range out.Records {
				if res.ErrorCode != nil {
					lastCode = *res.ErrorCode
					failed = append(failed, chunk[i])
				}
			}
		}
		pending = failed
		if len(pending) == 0 {
			return nil
		}
		if attempt >= p.maxAttempts {
			break
		}
		if err := backoff.Sleep(ctx, backoff.Policy{Base: p.baseDelay, Max: p.maxDelay}.Delay(attempt)); err != nil {
			lastErr = err
			break
		}
	}
	return &PutError{Failed: len(pending), Total: len(recs), ErrorCode: lastCode, Err: lastErr}
}

// chunks splits entries into groups within the per-call count and size limits.
func chunks(entries []types.PutRecordsRequestEntry) [][]types.PutRecordsRequestEntry {
	var out [][]types.PutRecordsRequestEntry
	start, size := 0, 0
	for i, e := range entries {
		n := len(e.Data) + len(aws.ToString(e.PartitionKey))
		if i-start == MaxRecordsPerPut || size+n > MaxBytesPerPut {
			out = append(out, entries[start:i])
			start, size = i, 0
		}
		size += n
	}
	if start < len(entries) {
		out = append(out, entries[start:])
	}
	return out
}

// PartitionKey makes a key Kinesis accepts (1 to 256 Unicode characters) from any string,
// keeping equal inputs on equal keys.
func PartitionKey(k string) string {
	if k == "" {
		return "_"
	}
	r := []rune(k)
	if len(r) > maxPartitionKey {
		return string(r[:maxPartitionKey])
	}
	return k
}
