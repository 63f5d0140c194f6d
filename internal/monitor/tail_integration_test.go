//go:build integration

package monitor

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/serverless-cdp/cdp/internal/emulator/testenv"
)

// countingKinesis counts GetRecords calls.
type countingKinesis struct {
	*kinesis.Client
	reads atomic.Int64
}

func (c *countingKinesis) GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, o ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	c.reads.Add(1)
	return c.Client.GetRecords(ctx, in, o...)
}

// TestTailReadsTheLatestRecords: on the Kinesis emulator, the tail returns the newest records
// first, at most perSource of each source, only one source's when asked, without the records
// Keep refuses, and answers a repeated read from its cache.
func TestTailReadsTheLatestRecords(t *testing.T) {
	ctx := context.Background()
	c := testenv.Clients(t)
	name := testenv.Stream(t, c.Kinesis, "tail", 2)
	put := func(src, id, user string) {
		data := fmt.Sprintf(`{"sourceId":%q,"message":{"type":"track","messageId":%q,"event":"E %s","userId":%q}}`, src, id, id, user)
		if _, err := c.Kinesis.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(name),
			PartitionKey: aws.String(id), Data: []byte(data)}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond) // distinct arrival times (the emulator's are in ms), not a wait for a result
	}
	put("src_a", "a1", "u1")
	put("src_b", "b1", "u2")
	put("src_a", "a2", "hidden")
	put("src_a", "a3", "u1")
	put("src_b", "b2", "u2")
	put("src_a", "a4", "u3")
	k := &countingKinesis{Client: c.Kinesis}
	tail := &Tail{Client: k, Stream: name, Keep: func(_ context.Context, data []byte) (bool, error) {
		return !bytes.Contains(data, []byte(`"hidden"`)), nil
	}}
	ids := func(evs []Event) string {
		var out []string
		for _, e := range evs {
			out = append(out, e.MessageID)
		}
		return strings.Join(out, ",")
	}
	evs, err := tail.Latest(ctx, "", 2)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(evs); got != "a4,b2,a3,b1" {
		t.Fatalf("latest 2 per source: %s, want a4,b2,a3,b1 (a2 is refused by Keep)", got)
	}
	if e := evs[0]; e.Source != "src_a" || e.Type != "track" || e.Name != "E a4" || !strings.Contains(e.Payload, "\n  \"messageId\": \"a4\"") || e.Arrived.IsZero() || e.Sequence == "" {
		t.Fatalf("event: %+v", e)
	}
	reads := k.reads.Load()
	if again, _ := tail.Latest(ctx, "", 2); ids(again) != ids(evs) || k.reads.Load() != reads {
		t.Fatalf("a repeated read within the cache time read the stream again (%d → %d reads)", reads, k.reads.Load())
	}
	evs, err = tail.Latest(ctx, "src_b", 5)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(evs); got != "b2,b1" {
		t.Fatalf("src_b: %s", got)
	}
}
