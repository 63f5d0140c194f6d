package stream_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/serverless-cdp/cdp/internal/emulator/testenv"
	"github.com/serverless-cdp/cdp/internal/stream"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// flaky wraps the real client: it rejects chosen records before they reach the stream, the way
// Kinesis reports ProvisionedThroughputExceeded for some entries of a PutRecords call.
type flaky struct {
	real   stream.PutRecordsAPI
	mu     sync.Mutex
	reject func(call int, data string) bool
	calls  int
}

func (f *flaky) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, opts ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	f.mu.Lock()
	f.calls++
	call := f.calls
	f.mu.Unlock()
	var pass []types.PutRecordsRequestEntry
	var passIdx []int
	results := make([]types.PutRecordsResultEntry, len(in.Records))
	failed := int32(0)
	for i, r := range in.Records {
		if f.reject(call, string(r.Data)) {
			results[i] = types.PutRecordsResultEntry{ErrorCode: aws.String("ProvisionedThroughputExceededException"), ErrorMessage: aws.String("injected")}
			failed++
			continue
		}
		pass = append(pass, r)
		passIdx = append(passIdx, i)
	}
	if len(pass) > 0 {
		out, err := f.real.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: in.StreamName, Records: pass}, opts...)
		if err != nil {
			return nil, err
		}
		for j, res := range out.Records {
			results[passIdx[j]] = res
			if res.ErrorCode != nil {
				failed++
			}
		}
	}
	return &kinesis.PutRecordsOutput{Records: results, FailedRecordCount: aws.Int32(failed)}, nil
}

func records(n int) []stream.Record {
	recs := make([]stream.Record, n)
	for i := range recs {
		recs[i] = stream.Record{PartitionKey: fmt.Sprintf("user-%d", i%7), Data: []byte(fmt.Sprintf("rec-%04d", i))}
	}
	return recs
}

func TestPutRetriesPartialFailuresExactlyOnce(t *testing.T) {
	c := testenv.Clients(t)
	name := testenv.Stream(t, c.Kinesis, "events", 2)
	// Every third record fails on the first two calls; the retry must resend only those.
	f := &flaky{real: c.Kinesis, reject: func(call int, data string) bool {
		var i int
		fmt.Sscanf(data, "rec-%d", &i)
		return call <= 2 && i%3 == 0
	}}
	p := stream.NewPublisher(f, name, stream.WithRetry(5, time.Millisecond, 5*time.Millisecond))
	const n = 1200 // three PutRecords calls' worth
	if err := p.Put(context.Background(), records(n)); err != nil {
		t.Fatalf("Put: %v", err)
	}
	got := testenv.ReadStream(t, c.Kinesis, name, n, 10*time.Second)
	seen := map[string]int{}
	for _, r := range got {
		seen[string(r.Data)]++
	}
	if len(got) != n || len(seen) != n {
		t.Fatalf("stream holds %d records (%d distinct), want %d exactly once each", len(got), len(seen), n)
	}
	if f.calls < 4 {
		t.Fatalf("expected retry calls, saw %d calls", f.calls)
	}
}

func TestPutReportsRecordsThatNeverLand(t *testing.T) {
	c := testenv.Clients(t)
	name := testenv.Stream(t, c.Kinesis, "events", 1)
	f := &flaky{real: c.Kinesis, reject: func(_ int, data string) bool { return data == "rec-0002" }}
	p := stream.NewPublisher(f, name, stream.WithRetry(3, time.Millisecond, 2*time.Millisecond))
	err := p.Put(context.Background(), records(5))
	var pe *stream.PutError
	if !errors.As(err, &pe) || pe.Failed != 1 || pe.Total != 5 || pe.ErrorCode != "ProvisionedThroughputExceededException" {
		t.Fatalf("Put error = %v, want PutError{Failed:1, Total:5}", err)
	}
	if f.calls != 3 {
		t.Fatalf("calls = %d, want 3 attempts", f.calls)
	}
}

func TestChunkingRespectsLimits(t *testing.T) {
	// 12 records of 1 MiB-ish would exceed 5 MiB per call; the publisher must split.
	c := testenv.Clients(t)
	name := testenv.Stream(t, c.Kinesis, "big", 1)
	var sizes []int
	api := &recorder{real: c.Kinesis, sizes: &sizes}
	p := stream.NewPublisher(api, name)
	recs := make([]stream.Record, 12)
	for i := range recs {
		recs[i] = stream.Record{PartitionKey: "k", Data: make([]byte, 900<<10)}
	}
	if err := p.Put(context.Background(), recs); err != nil {
		t.Fatalf("Put: %v", err)
	}
	total := 0
	for _, s := range sizes {
		if s > stream.MaxBytesPerPut {
			t.Fatalf("a call carried %d bytes", s)
		}
		total++
	}
	if total < 3 {
		t.Fatalf("expected at least 3 calls, got %d", total)
	}
}

type recorder struct {
	real  stream.PutRecordsAPI
	sizes *[]int
}

func (r *recorder) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, opts ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	n := 0
	for _, e := range in.Records {
		n += len(e.Data) + len(aws.ToString(e.PartitionKey))
	}
	*r.sizes = append(*r.sizes, n)
	return r.real.PutRecords(ctx, in, opts...)
}

func TestPartitionKey(t *testing.T) {
	long := make([]rune, 300)
	for i := range long {
		long[i] = 'é'
	}
	if got := stream.PartitionKey(string(long)); len([]rune(got)) != 256 {
		t.Fatalf("long key has %d runes", len([]rune(got)))
	}
	if stream.PartitionKey("") == "" {
		t.Fatal("empty key must map to a non-empty key")
	}
}
