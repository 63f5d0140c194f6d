package testenv

import (
	"context"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kinesistypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// PutRecordsAPI is the Kinesis call FlakyKinesis wraps (matches stream.PutRecordsAPI).
type PutRecordsAPI interface {
	PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error)
}

// FlakyKinesis wraps a real Kinesis client and rejects chosen entries before they reach the
// stream, the way Kinesis answers ProvisionedThroughputExceeded for some entries of a
// PutRecords call. Reject sees the 1-based call number and the entry's data.
type FlakyKinesis struct {
	Real   PutRecordsAPI
	Reject func(call int, data []byte) bool

	mu    sync.Mutex
	calls int
}

// Calls is how many PutRecords calls were made.
func (f *FlakyKinesis) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// PutRecords implements PutRecordsAPI.
func (f *FlakyKinesis) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, opts ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	f.mu.Lock()
	f.calls++
	call := f.calls
	f.mu.Unlock()
	var pass []kinesistypes.PutRecordsRequestEntry
	var passIdx []int
	results := make([]kinesistypes.PutRecordsResultEntry, len(in.Records))
	failed := int32(0)
	for i, r := range in.Records {
		if f.Reject(call, r.Data) {
			results[i] = kinesistypes.PutRecordsResultEntry{
				ErrorCode:    aws.String("ProvisionedThroughputExceededException"),
				ErrorMessage: aws.String("injected by testenv.FlakyKinesis"),
			}
			failed++
			continue
		}
		pass = append(pass, r)
		passIdx = append(passIdx, i)
	}
	if len(pass) > 0 {
		out, err := f.Real.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: in.StreamName, StreamARN: in.StreamARN, Records: pass}, opts...)
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
