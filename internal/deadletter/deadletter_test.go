//go:build integration

package deadletter_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/serverless-cdp/cdp/internal/awsenv"
	"github.com/serverless-cdp/cdp/internal/deadletter"
	"github.com/serverless-cdp/cdp/internal/emulator/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestPutListReplay(t *testing.T) {
	c := testenv.Clients(t)
	table := testenv.Table(t, c.DynamoDB)
	s := deadletter.NewStore(c.DynamoDB, table)
	ctx := context.Background()
	a, err := s.Put(ctx, deadletter.Entry{Stage: "identity", Kind: "event", Reason: "decode", Error: "bad", Payload: []byte(`{"a":1}`)})
	if err != nil || a.Count != 1 {
		t.Fatalf("put: %+v %v", a, err)
	}
	a2, err := s.Put(ctx, deadletter.Entry{Stage: "identity", Kind: "event", Reason: "decode", Error: "worse", Payload: []byte(`{"a":1}`)})
	if err != nil || a2.ID != a.ID || a2.Count != 2 || a2.Error != "worse" {
		t.Fatalf("second put: %+v %v", a2, err)
	}
	b, _ := s.Put(ctx, deadletter.Entry{Stage: "identity", Kind: "event", Reason: "x", Payload: []byte("\xff not json")})
	if _, err := s.Put(ctx, deadletter.Entry{Stage: "segments", Kind: "change", Reason: "x", Payload: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	var all []deadletter.Entry
	next := ""
	for {
		page, cur, err := s.List(ctx, "identity", 1, next)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page...)
		if cur == "" {
			break
		}
		next = cur
	}
	if len(all) != 2 {
		t.Fatalf("listed %d identity entries", len(all))
	}
	js, _ := json.Marshal(b)
	if !strings.Contains(string(js), `"payloadBase64"`) {
		t.Fatalf("binary payload json: %s", js)
	}

	fail := true
	var replayed []string
	svc := deadletter.NewService(s, map[string]deadletter.Replayer{"identity": deadletter.ReplayFunc(func(_ context.Context, e deadletter.Entry) error {
		if fail {
			return errors.New("still broken")
		}
		replayed = append(replayed, string(e.Payload))
		return nil
	})})
	if err := svc.Replay(ctx, "identity", a.ID); err == nil {
		t.Fatal("failed replay reported success")
	}
	got, err := svc.Get(ctx, "identity", a.ID)
	if err != nil || got.LastReplayError != "still broken" {
		t.Fatalf("after failed replay: %+v %v", got, err)
	}
	fail = false
	if err := svc.Replay(ctx, "identity", a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Get(ctx, "identity", a.ID); !errors.Is(err, deadletter.ErrNotFound) {
		t.Fatalf("replayed entry still there: %v", err)
	}
	if err := svc.Replay(ctx, "segments", "nope"); !errors.Is(err, deadletter.ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
	res, err := svc.ReplayAll(ctx, "identity", "")
	if err != nil || res.Replayed != 1 || res.Failed != 0 || len(replayed) != 2 {
		t.Fatalf("replay all: %+v %v %v", res, err, replayed)
	}
}

// TestLargePayloadsStoredWhole: a payload of 1 MiB (a Kinesis record's limit) is stored whether
// it compresses or not, and Get, List and Replay give it back byte for byte; Delete removes its
// chunks too. (Before, anything over 350 KB was refused and the record was lost.)
func TestLargePayloadsStoredWhole(t *testing.T) {
	c := testenv.Clients(t)
	table := testenv.Table(t, c.DynamoDB)
	s := deadletter.NewStore(c.DynamoDB, table)
	ctx := context.Background()
	random := make([]byte, 1<<20)
	if _, err := rand.Read(random); err != nil {
		t.Fatal(err)
	}
	compressible := []byte(`{"traits":{"bio":"` + strings.Repeat("lorem ipsum dolor sit amet ", (1<<20)/27) + `"}}`)
	long := strings.Repeat("e", 100<<10) // an over-long error text is truncated, not fatal
	payloads := map[string][]byte{"random": random, "compressible": compressible}
	ids := map[string]string{}
	for name, p := range payloads {
		ids[putTwiceAndGet(t, s, name, p, long)] = name
	}
	page, _, err := s.List(ctx, "identity", 100, "")
	if err != nil || len(page) != 2 {
		t.Fatalf("list: %d entries, %v", len(page), err)
	}
	for _, e := range page {
		if !bytes.Equal(e.Payload, payloads[ids[e.ID]]) {
			t.Fatalf("list: %s payload differs (%d bytes)", ids[e.ID], len(e.Payload))
		}
	}
	var replayed [][]byte
	svc := deadletter.NewService(s, map[string]deadletter.Replayer{"identity": deadletter.ReplayFunc(func(_ context.Context, e deadletter.Entry) error {
		replayed = append(replayed, e.Payload)
		return nil
	})})
	res, err := svc.ReplayAll(ctx, "identity", "")
	if err != nil || res.Replayed != 2 || len(replayed) != 2 {
		t.Fatalf("replay: %+v %v", res, err)
	}
	for _, p := range replayed {
		if !bytes.Equal(p, random) && !bytes.Equal(p, compressible) {
			t.Fatalf("replayed payload of %d bytes differs", len(p))
		}
	}
	if n := itemCount(t, c, table); n != 1 {
		t.Fatalf("%d items left after the entries were replayed, want only the stage's registration (chunks not deleted?)", n)
	}
}

// putTwiceAndGet dead-letters p twice and checks that Get gives it back whole; it returns the id.
func putTwiceAndGet(t *testing.T, s *deadletter.Store, name string, p []byte, errText string) string {
	t.Helper()
	ctx := context.Background()
	e, err := s.Put(ctx, deadletter.Entry{Stage: "identity", Kind: "event", Reason: "too_large", Error: errText, Payload: p})
	if err != nil {
		t.Fatalf("%s: put %d bytes: %v", name, len(p), err)
	}
	if len(e.ID) != 24 {
		t.Fatalf("%s: id %q", name, e.ID)
	}
	got, err := s.Get(ctx, "identity", e.ID)
	// Count is how often the record was dead-lettered, at least: an SDK retry of a write that
	// had succeeded (a slow emulator) counts it again, so only its growth is asserted.
	if err != nil || !bytes.Equal(got.Payload, p) || got.Count < 1 {
		t.Fatalf("%s: get: %d bytes (want %d), count %d, %v", name, len(got.Payload), len(p), got.Count, err)
	}
	again, err := s.Put(ctx, deadletter.Entry{Stage: "identity", Kind: "event", Reason: "too_large", Payload: p})
	if err != nil || again.ID != e.ID || again.Count <= got.Count {
		t.Fatalf("%s: second put: %+v %v", name, again.Count, err)
	}
	return e.ID
}

// TestReplayAllStopsBeforeDeadline: ReplayAll keeps ReplayReserve before its context's deadline,
// answers how many it replayed and how many remain, and continues from `next`.
func TestReplayAllStopsBeforeDeadline(t *testing.T) {
	c := testenv.Clients(t)
	s := deadletter.NewStore(c.DynamoDB, testenv.Table(t, c.DynamoDB))
	ctx := context.Background()
	for i := 0; i < 12; i++ {
		if _, err := s.Put(ctx, deadletter.Entry{Stage: "identity", Kind: "event", Reason: "x", Payload: []byte(fmt.Sprintf(`{"n":%d}`, i))}); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]int{}
	svc := deadletter.NewService(s, map[string]deadletter.Replayer{"identity": deadletter.ReplayFunc(func(ctx context.Context, e deadletter.Entry) error {
		seen[string(e.Payload)]++
		time.Sleep(100 * time.Millisecond) // each replay does some work
		return nil
	})})
	dctx, cancel := context.WithTimeout(ctx, deadletter.ReplayReserve+350*time.Millisecond)
	defer cancel()
	start := time.Now()
	res, err := svc.ReplayAll(dctx, "identity", "")
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Fatalf("ReplayAll took %s, past its budget", took)
	}
	if res.Replayed < 1 || res.Replayed > 5 || res.Next == "" || res.Remaining != 12-res.Replayed {
		t.Fatalf("first sweep: %+v", res)
	}
	rest, err := svc.ReplayAll(ctx, "identity", res.Next)
	if err != nil || rest.Next != "" || rest.Replayed != 12-res.Replayed || rest.Remaining != 0 {
		t.Fatalf("second sweep: %+v %v", rest, err)
	}
	if len(seen) != 12 {
		t.Fatalf("replayed %d distinct entries, want 12", len(seen))
	}
	for p, n := range seen {
		if n != 1 {
			t.Fatalf("%s replayed %d times", p, n)
		}
	}
}

func itemCount(t *testing.T, c awsenv.Clients, table string) int {
	t.Helper()
	out, err := c.DynamoDB.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(table), Select: dtypes.SelectCount, ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	return int(out.Count)
}
