package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
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

// FlakyTransport is an http.RoundTripper for a Kinesis client (kinesis.Options.HTTPClient) that
// injects partial PutRecords failures on the wire: the entries Reject picks are removed from the
// request before it reaches the stream and answered ProvisionedThroughputExceededException, the
// others are written and answered as the stream answered them. Code above the client (the
// publishers of every stage) sees exactly what Kinesis sends when some entries fail.
type FlakyTransport struct {
	Base   http.RoundTripper // nil: http.DefaultTransport
	Reject func(data []byte) bool

	mu       sync.Mutex
	rejected int
}

// Rejected is how many entries were refused so far.
func (f *FlakyTransport) Rejected() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rejected
}

// Do implements the SDK's HTTP client interface.
func (f *FlakyTransport) Do(req *http.Request) (*http.Response, error) { return f.RoundTrip(req) }

type putEntry struct {
	Data []byte `json:"Data"`
}

// RoundTrip implements http.RoundTripper.
func (f *FlakyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := f.Base
	if base == nil {
		base = http.DefaultTransport
	}
	if req.Header.Get("X-Amz-Target") != "Kinesis_20131202.PutRecords" || req.Body == nil {
		return base.RoundTrip(req)
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, fmt.Errorf("flaky transport: read request: %w", err)
	}
	var in map[string]json.RawMessage
	var raw []json.RawMessage
	if json.Unmarshal(body, &in) != nil || json.Unmarshal(in["Records"], &raw) != nil {
		return nil, errors.New("flaky transport: PutRecords request is not JSON")
	}
	var pass []json.RawMessage
	var passIdx []int
	for i, r := range raw {
		var e putEntry
		if json.Unmarshal(r, &e) == nil && f.Reject(e.Data) {
			continue
		}
		pass, passIdx = append(pass, r), append(passIdx, i)
	}
	f.mu.Lock()
	f.rejected += len(raw) - len(pass)
	f.mu.Unlock()
	results := make([]map[string]any, len(raw))
	for i := range results {
		results[i] = map[string]any{"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "injected by testenv.FlakyTransport"}
	}
	failed := len(raw) - len(pass)
	if len(pass) > 0 {
		got, resp, err := f.forward(base, req, in, pass)
		if err != nil || resp != nil {
			return resp, err // a whole-call error or a non-200 answer, as it came
		}
		for j, r := range got {
			results[passIdx[j]] = r
			if r["ErrorCode"] != nil {
				failed++
			}
		}
	}
	out, _ := json.Marshal(map[string]any{"FailedRecordCount": failed, "Records": results})
	return &http.Response{
		StatusCode: http.StatusOK, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"application/x-amz-json-1.1"}},
		Body:          io.NopCloser(bytes.NewReader(out)),
		ContentLength: int64(len(out)), Request: req,
	}, nil
}

// forward sends the request with only the passing entries; a non-200 answer is returned as is.
func (f *FlakyTransport) forward(base http.RoundTripper, req *http.Request, in map[string]json.RawMessage, pass []json.RawMessage) ([]map[string]any, *http.Response, error) {
	in["Records"], _ = json.Marshal(pass)
	body, _ := json.Marshal(in)
	fwd := req.Clone(req.Context())
	fwd.Body, fwd.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	fwd.Header.Set("Content-Length", strconv.Itoa(len(body)))
	resp, err := base.RoundTrip(fwd)
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, resp, err
	}
	defer resp.Body.Close()
	var out struct{ Records []map[string]any }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, nil, fmt.Errorf("flaky transport: decode answer: %w", err)
	}
	if len(out.Records) != len(pass) {
		return nil, nil, fmt.Errorf("flaky transport: %d results for %d records", len(out.Records), len(pass))
	}
	return out.Records, nil, nil
}
