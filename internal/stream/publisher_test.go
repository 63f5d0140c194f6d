//go:build integration

package stream_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/serverless-cdp/cdp/internal/emulator/testenv"
	"github.com/serverless-cdp/cdp/internal/stream"
)

func TestMain(m *testing.M) { testenv.Main(m) }

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
	f := &testenv.FlakyKinesis{Real: c.Kinesis, Reject: func(call int, data []byte) bool {
		var i int
		fmt.Sscanf(string(data), "rec-%d", &i)
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
	if f.Calls() < 4 {
		t.Fatalf("expected retry calls, saw %d calls", f.Calls())
	}
}

func TestPutReportsRecordsThatNeverLand(t *testing.T) {
	c := testenv.Clients(t)
	name := testenv.Stream(t, c.Kinesis, "events", 1)
	f := &testenv.FlakyKinesis{Real: c.Kinesis, Reject: func(_ int, data []byte) bool { return string(data) == "rec-0002" }}
	p := stream.NewPublisher(f, name, stream.WithRetry(3, time.Millisecond, 2*time.Millisecond))
	err := p.Put(context.Background(), records(5))
	var pe *stream.PutError
	if !errors.As(err, &pe) || pe.Failed != 1 || pe.Total != 5 || pe.ErrorCode != "ProvisionedThroughputExceededException" {
		t.Fatalf("Put error = %v, want PutError{Failed:1, Total:5}", err)
	}
	if f.Calls() != 3 {
		t.Fatalf("calls = %d, want 3 attempts", f.Calls())
	}
}

func TestChunkingRespectsLimits(t *testing.T) {
	// 7 records of 900 KiB exceed 5 MiB for one call; the publisher must split them. Splitting is
	// pure logic, so the recorder answers success itself instead of shipping 6 MiB to the mock.
	var sizes []int
	api := &recorder{sizes: &sizes}
	p := stream.NewPublisher(api, "big")
	recs := make([]stream.Record, 7)
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
	if total < 2 {
		t.Fatalf("expected at least 2 calls, got %d", total)
	}
}

type recorder struct {
	sizes *[]int
}

func (r *recorder) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, opts ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	n := 0
	for _, e := range in.Records {
		n += len(e.Data) + len(aws.ToString(e.PartitionKey))
	}
	*r.sizes = append(*r.sizes, n)
	return &kinesis.PutRecordsOutput{Records: make([]types.PutRecordsResultEntry, len(in.Records)), FailedRecordCount: aws.Int32(0)}, nil
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
