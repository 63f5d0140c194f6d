package archive

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/serverless-cdp/cdp/internal/tracking"
)

func TestKeyRoundTrip(t *testing.T) {
	h := time.Date(2026, 11, 30, 13, 0, 0, 0, time.UTC)
	k := Key("src_1", h.Add(25*time.Minute), "part-1")
	if k != "source=src_1/dt=2026-11-30/hour=13/part-1.json.gz" {
		t.Fatalf("key %q", k)
	}
	src, hour, ok := ParseKey(k)
	if !ok || src != "src_1" || !hour.Equal(h) {
		t.Fatalf("parse: %q %v %v", src, hour, ok)
	}
	for _, bad := range []string{"x", "source=/dt=2026-11-30/hour=13/a.json.gz", "source=s/dt=2026-13-30/hour=13/a.json.gz", "source=s/dt=2026-11-30/hour=13/a.json"} {
		if _, _, ok := ParseKey(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestFolderScanReadsTheRangeOnly(t *testing.T) {
	ctx := context.Background()
	st := Folder{Root: t.TempDir()}
	h := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	put := func(src string, hour time.Time, ids ...string) {
		var lines [][]byte
		for _, id := range ids {
			b, _ := json.Marshal(tracking.Record{SourceID: src, Message: tracking.Message{Type: "track", MessageID: id}})
			lines = append(lines, b)
		}
		body, err := Encode(lines)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Put(ctx, Key(src, hour, "p"), body); err != nil {
			t.Fatal(err)
		}
	}
	put("a", h, "a1", "a2")
	put("a", h.Add(time.Hour), "a3")
	put("b", h, "b1")
	put("a", h.Add(2*time.Hour), "a4")
	var got []string
	err := Scan(ctx, st, Range{From: h, To: h.Add(2 * time.Hour)}, func(_ string, r tracking.Record) error {
		got = append(got, r.Message.MessageID)
		return nil
	}, nil)
	if err != nil || len(got) != 4 || got[0] != "a1" || got[2] != "a3" || got[3] != "b1" {
		t.Fatalf("scan: %v %v", got, err)
	}
	got = nil
	Scan(ctx, st, Range{From: h, To: h.Add(3 * time.Hour), Sources: []string{"a"}}, func(_ string, r tracking.Record) error {
		got = append(got, r.Message.MessageID)
		return nil
	}, nil)
	if len(got) != 4 || got[3] != "a4" {
		t.Fatalf("scan source a: %v", got)
	}
	if _, err := st.Get(ctx, "source=a/none.json.gz"); err != ErrNotFound {
		t.Fatalf("get missing: %v", err)
	}
}

// TestReplayedRecordsAreKeptApart: a record a pipeline replay put back on the stream is filed
// under source=_replay (as Firehose's partition query files it), and a scan of every source
// never reads it, so a replay of the current hour does not read its own output back.
func TestReplayedRecordsAreKeptApart(t *testing.T) {
	ctx := context.Background()
	st := Folder{Root: t.TempDir()}
	live, _ := json.Marshal(tracking.Record{SourceID: "src_a", Message: tracking.Message{Type: "track", MessageID: "m1"}})
	again, _ := json.Marshal(tracking.Record{SourceID: "src_a", Message: tracking.Message{Type: "track", MessageID: "m1"}, Replay: "rp_1"})
	now := time.Now()
	rec := func(seq string, data []byte) events.KinesisEventRecord {
		var r events.KinesisEventRecord
		r.EventID = "shardId-000000000000:" + seq
		r.Kinesis.Data, r.Kinesis.SequenceNumber = data, seq
		r.Kinesis.ApproximateArrivalTimestamp = events.SecondsEpochTime{Time: now}
		return r
	}
	w := &Writer{Store: st}
	if _, err := w.Handle(ctx, events.KinesisEvent{Records: []events.KinesisEventRecord{rec("1", live), rec("2", again)}}); err != nil {
		t.Fatal(err)
	}
	var keys []string
	st.List(ctx, "", func(k string) error { keys = append(keys, k); return nil })
	if len(keys) != 2 || !strings.HasPrefix(keys[0], "source="+ReplaySource+"/") {
		t.Fatalf("keys %v", keys)
	}
	n := 0
	Scan(ctx, st, Range{From: now.Add(-time.Hour), To: now.Add(time.Hour)}, func(string, tracking.Record) error { n++; return nil }, nil)
	if n != 1 {
		t.Fatalf("a scan of every source read %d records, want the live one", n)
	}
}
