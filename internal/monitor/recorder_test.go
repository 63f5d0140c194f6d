package monitor

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// countingStore counts Write calls.
type countingStore struct {
	*MemStore
	writes int
}

func (c *countingStore) Write(ctx context.Context, b Batch) error {
	c.writes++
	return c.MemStore.Write(ctx, b)
}

// TestRecorderFlushesAtMostEveryInterval: counts stay in memory until FlushEvery passed, then
// one flush writes them all; samples are capped at MaxRejections, the newest kept.
func TestRecorderFlushesAtMostEveryInterval(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Now().UTC().Truncate(time.Minute)}
	st := &countingStore{MemStore: NewMemStore()}
	r := NewRecorder(st, RecorderOptions{Now: clk.Now})
	r.FlushIfDue(ctx) // a new container's first flush is due at once: nothing to write
	r.Accepted("src_a", 1)
	r.FlushIfDue(ctx)
	if st.writes != 1 {
		t.Fatalf("%d writes at the first request, want 1", st.writes)
	}
	st.writes = 0
	r.Accepted("src_a", -1) // not counted
	for i := range 1000 {
		r.Accepted("src_a", 2)
		if i%40 == 0 {
			clk.Add(time.Millisecond)
			r.Rejected("", "unauthorized", fmt.Sprintf("invalid write key %d", i), "/v1/track")
		}
		r.FlushIfDue(ctx)
	}
	r.Processed("identity", 5, 1200*time.Millisecond)
	r.Processed("identity", 5, 300*time.Millisecond)
	if st.writes != 0 {
		t.Fatalf("%d writes before the interval passed", st.writes)
	}
	clk.Add(FlushEvery)
	r.FlushIfDue(ctx)
	r.FlushIfDue(ctx)
	if st.writes != 1 {
		t.Fatalf("%d writes after the interval, want 1", st.writes)
	}
	counts, _ := st.Counts(ctx, clk.Now().Add(-time.Hour))
	if len(counts) != 2 || counts[0].Source != "src_a" || counts[0].Accepted != 2001 ||
		counts[1].Source != UnknownSource || counts[1].Rejected["unauthorized"] != 25 {
		t.Fatalf("counts: %+v", counts)
	}
	rs, _ := st.Rejections(ctx, 100)
	if len(rs) != MaxRejections || rs[0].Message != "invalid write key 960" {
		t.Fatalf("%d samples, newest %+v; want %d, the newest kept", len(rs), rs[0], MaxRejections)
	}
	lags, _ := st.Lags(ctx, clk.Now().Add(-time.Hour))
	if len(lags) != 1 || lags[0].Records != 10 || lags[0].MaxAge != 1200*time.Millisecond {
		t.Fatalf("lags: %+v", lags)
	}
	var nilRec *Recorder
	nilRec.Accepted("x", 1)
	nilRec.Rejected("x", "c", "m", "p")
	nilRec.FlushIfDue(ctx)
}

func TestTruncate(t *testing.T) {
	if got := truncate("héllo", 2); got != "h…" {
		t.Fatalf("truncate: %q", got)
	}
	if got := truncate("abc", 5); got != "abc" {
		t.Fatalf("truncate: %q", got)
	}
}

// TestStageWrappersRecordLag: the wrappers count a batch's records and its oldest record's
// wait, for Kinesis handlers and for entry points that also take schedule events.
func TestStageWrappersRecordLag(t *testing.T) {
	ctx := context.Background()
	st := NewMemStore()
	rec := NewRecorder(st, RecorderOptions{})
	ev := events.KinesisEvent{Records: make([]events.KinesisEventRecord, 3)}
	for i := range ev.Records {
		ev.Records[i].Kinesis.ApproximateArrivalTimestamp = events.SecondsEpochTime{Time: time.Now().Add(-time.Duration(i+1) * time.Second)}
	}
	called := 0
	k := Kinesis(rec, "identity", func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error) {
		called++
		return events.KinesisEventResponse{}, nil
	})
	if _, err := k(ctx, ev); err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(ev)
	inv := Invoke(rec, "segments", func(context.Context, json.RawMessage) (any, error) { called++; return nil, nil })
	if _, err := inv(ctx, raw); err != nil {
		t.Fatal(err)
	}
	if _, err := inv(ctx, json.RawMessage(`{"source":"aws.events"}`)); err != nil {
		t.Fatal(err)
	}
	rec.Flush(ctx)
	lags, _ := st.Lags(ctx, time.Now().Add(-time.Hour))
	if called != 3 || len(lags) != 2 {
		t.Fatalf("called %d, lags %+v", called, lags)
	}
	for _, l := range lags {
		if l.Records != 3 || l.MaxAge < 3*time.Second || l.MaxAge > 10*time.Second {
			t.Errorf("%s: %+v; want 3 records, about 3 s", l.Stage, l)
		}
	}
}

// TestRejectionMessagesKeepNoValue: what an error message echoes of the input is not kept.
func TestRejectionMessagesKeepNoValue(t *testing.T) {
	for in, want := range map[string]string{
		`timestamp "bob@example.com" is not an ISO 8601 date`:        `timestamp "…" is not an ISO 8601 date`,
		`batch[0].userId: expected a string, got {"email":"bob@exam`: `batch[0].userId: expected a string, got …`,
		`type "x" is not one of identify, track`:                     `type "…" is not one of identify, track`,
		"invalid write key":                                          "invalid write key",
	} {
		if got := redact(in); got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
}
