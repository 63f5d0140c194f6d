package archive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/serverless-cdp/cdp/internal/tracking"
)

var quiet = slog.New(slog.DiscardHandler)

var t0 = time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)

// kinesisRecord is a record as the pollers deliver it.
func kinesisRecord(shard string, seq int, arrival time.Time, data []byte) events.KinesisEventRecord {
	s := fmt.Sprintf("%056d", seq)
	return events.KinesisEventRecord{
		EventID: shard + ":" + s,
		Kinesis: events.KinesisRecord{
			SequenceNumber:              s,
			ApproximateArrivalTimestamp: events.SecondsEpochTime{Time: arrival},
			Data:                        data,
		},
	}
}

func eventData(src, id, user string, at time.Time) []byte {
	b, _ := json.Marshal(tracking.Record{SourceID: src, Message: tracking.Message{
		Type: "track", MessageID: id, UserID: user, Event: "Order Completed", ReceivedAt: at, Timestamp: at,
	}})
	return b
}

// flakyStore fails the first Put of every fifth distinct key.
type flakyStore struct {
	Store
	mu     sync.Mutex
	seen   map[string]bool
	n      int
	failed int
}

func (f *flakyStore) Put(ctx context.Context, key string, body []byte) error {
	f.mu.Lock()
	first := !f.seen[key]
	f.seen[key] = true
	if first {
		f.n++
	}
	fail := first && f.n%5 == 0
	if fail {
		f.failed++
	}
	f.mu.Unlock()
	if fail {
		return errors.New("injected: store unavailable")
	}
	return f.Store.Put(ctx, key, body)
}

// deliver plays the event source mapping for one shard: batches of changing sizes; a batch with
// failures is delivered again from its first record; every fourth successful call "crashes"
// after the handler returned (the checkpoint is not saved), so the batch is delivered again
// from the same record, with other boundaries.
func deliver(t *testing.T, w *Writer, recs []events.KinesisEventRecord) (calls int) {
	t.Helper()
	sizes := []int{50, 80, 20, 50, 7}
	pos := 0
	for pos < len(recs) {
		batch := recs[pos:min(pos+sizes[calls%len(sizes)], len(recs))]
		calls++
		resp, err := w.Handle(context.Background(), events.KinesisEvent{Records: batch})
		if err != nil {
			t.Fatalf("handle: %v", err)
		}
		if len(resp.BatchItemFailures) > 0 {
			if resp.BatchItemFailures[0].ItemIdentifier != batch[0].Kinesis.SequenceNumber {
				t.Fatalf("a failed batch must be retried from its first record")
			}
			continue
		}
		if calls%4 == 0 {
			continue
		}
		pos += len(batch)
	}
	return calls
}

// TestWriterArchivesEveryRecordOnce: a run of N records over two shards, three sources and
// three hours, with redelivered batches (the same start, other ends) and failed writes, leaves
// exactly the N messageIds once each, every line the record's bytes.
func TestWriterArchivesEveryRecordOnce(t *testing.T) {
	forEachStore(t, func(t *testing.T, st Store) {
		const n = 900
		want := map[string][]byte{}
		shards := map[string][]events.KinesisEventRecord{}
		for i := range n {
			shard := fmt.Sprintf("shardId-%012d", i%2)
			src := []string{"src_web", "src_pos", "src_crm"}[i%3]
			id := fmt.Sprintf("m-%04d", i)
			arrival := t0.Add(time.Duration(i) * 12 * time.Second) // 900 × 12 s = 3 hours
			data := eventData(src, id, fmt.Sprint("u", i%17), arrival)
			want[src+"/"+id] = data
			shards[shard] = append(shards[shard], kinesisRecord(shard, 1000+i, arrival, data))
		}
		fs := &flakyStore{Store: st, seen: map[string]bool{}}
		w := &Writer{Store: fs, Logger: quiet}
		calls := 0
		for _, recs := range shards {
			calls += deliver(t, w, recs)
		}
		if fs.failed == 0 || calls <= n/50 {
			t.Fatalf("the run must include failed writes and redeliveries: %d failed, %d calls", fs.failed, calls)
		}
		got := map[string]int{}
		err := Scan(context.Background(), st, Range{From: t0, To: t0.Add(4 * time.Hour)}, func(key string, rec tracking.Record) error {
			k := rec.SourceID + "/" + rec.Message.MessageID
			got[k]++
			if src, _, _ := ParseKey(key); src != rec.SourceID {
				t.Errorf("%s archived under %s", k, key)
			}
			return nil
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k := range want {
			if got[k] != 1 {
				t.Errorf("%s archived %d times", k, got[k])
			}
		}
		if len(got) != n {
			t.Fatalf("%d distinct records archived, want %d", len(got), n)
		}
		assertLinesAreRecordBytes(t, st, want)
	})
}

// assertLinesAreRecordBytes reads every object: each line is a record's bytes, unchanged.
func assertLinesAreRecordBytes(t *testing.T, st Store, want map[string][]byte) {
	t.Helper()
	ctx := context.Background()
	for _, key := range listAll(t, st, "source=") {
		body, err := st.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		_ = Lines(body, func(line []byte) error {
			var rec tracking.Record
			_ = json.Unmarshal(line, &rec)
			if w := want[rec.SourceID+"/"+rec.Message.MessageID]; string(w) != string(line) {
				t.Errorf("%s: line %s is not the record's bytes %s", key, line, w)
			}
			return nil
		})
	}
}

// TestWriterPartitionsBySourceAndHourOfArrival: one batch across an hour boundary and two
// sources is one object per (source, hour of arrival), named after the shard and the first
// record; the events' own timestamps do not matter.
func TestWriterPartitionsBySourceAndHourOfArrival(t *testing.T) {
	forEachStore(t, func(t *testing.T, st Store) {
		old := t0.Add(-72 * time.Hour) // the event's timestamp: days before its arrival
		recs := []events.KinesisEventRecord{
			kinesisRecord("shardId-000000000003", 1, t0.Add(59*time.Minute+59*time.Second), eventData("src_a", "1", "u", old)),
			kinesisRecord("shardId-000000000003", 2, t0.Add(59*time.Minute+59*time.Second), eventData("src_b", "2", "u", old)),
			kinesisRecord("shardId-000000000003", 3, t0.Add(time.Hour), eventData("src_a", "3", "u", old)),
			kinesisRecord("shardId-000000000003", 4, t0.Add(59*time.Minute), eventData("src_a", "4", "u", old)),
		}
		resp, err := (&Writer{Store: st, Logger: quiet}).Handle(context.Background(), events.KinesisEvent{Records: recs})
		if err != nil || len(resp.BatchItemFailures) > 0 {
			t.Fatalf("handle: %v %v", resp, err)
		}
		seq := func(i int) string { return fmt.Sprintf("%056d", i) }
		want := []string{
			"source=src_a/dt=2026-11-30/hour=10/shardId-000000000003-" + seq(1) + ".json.gz",
			"source=src_a/dt=2026-11-30/hour=11/shardId-000000000003-" + seq(3) + ".json.gz",
			"source=src_b/dt=2026-11-30/hour=10/shardId-000000000003-" + seq(2) + ".json.gz",
		}
		if got := listAll(t, st, ""); !slices.Equal(got, want) {
			t.Fatalf("objects:\n got %v\nwant %v", got, want)
		}
		var ids []string
		body, _ := st.Get(context.Background(), want[0])
		_ = Lines(body, func(l []byte) error {
			var r tracking.Record
			_ = json.Unmarshal(l, &r)
			ids = append(ids, r.Message.MessageID)
			return nil
		})
		if !slices.Equal(ids, []string{"1", "4"}) {
			t.Fatalf("src_a hour 10 holds %v, want [1 4] in stream order", ids)
		}
	})
}

// TestWriterKeepsInvalidRecords: a record that is not an event with a sourceId and a messageId
// is archived under source=_invalid with its reason and bytes, never dropped, and Scan without
// sources does not return it.
func TestWriterKeepsInvalidRecords(t *testing.T) {
	forEachStore(t, func(t *testing.T, st Store) {
		ctx := context.Background()
		bad := map[string]string{
			"not json":                      "not a JSON event record",
			`{"message":{"messageId":"x"}}`: "no valid sourceId",
			`{"sourceId":"../x","message":{"messageId":"x"}}`: "no valid sourceId",
			`{"sourceId":"src_a","message":{}}`:               "no messageId",
			"{\"a\":\n1}":                                     "no valid sourceId",
		}
		var recs []events.KinesisEventRecord
		i := 0
		for data := range bad {
			i++
			recs = append(recs, kinesisRecord("shardId-000000000000", i, t0, []byte(data)))
		}
		recs = append(recs, kinesisRecord("shardId-000000000000", 99, t0, eventData("src_a", "ok", "u", t0)))
		if resp, err := (&Writer{Store: st, Logger: quiet}).Handle(ctx, events.KinesisEvent{Records: recs}); err != nil || len(resp.BatchItemFailures) > 0 {
			t.Fatalf("handle: %v %v", resp, err)
		}
		got := map[string]string{}
		for _, key := range listAll(t, st, "source="+InvalidSource+"/") {
			body, _ := st.Get(ctx, key)
			_ = Lines(body, func(l []byte) error {
				var inv InvalidLine
				if err := json.Unmarshal(l, &inv); err != nil {
					t.Errorf("invalid line %s: %v", l, err)
				}
				if !strings.HasPrefix(inv.EventID, "shardId-000000000000:") {
					t.Errorf("event id %q", inv.EventID)
				}
				got[string(inv.Data)] = inv.Reason
				return nil
			})
		}
		if len(got) != len(bad) {
			t.Fatalf("kept %d invalid records, want %d: %v", len(got), len(bad), got)
		}
		for data, reason := range bad {
			if got[data] != reason {
				t.Errorf("%q: reason %q, want %q", data, got[data], reason)
			}
		}
		var ids []string
		_ = Scan(ctx, st, Range{From: t0, To: t0.Add(time.Hour)}, func(_ string, r tracking.Record) error {
			ids = append(ids, r.Message.MessageID)
			return nil
		}, nil)
		if !slices.Equal(ids, []string{"ok"}) {
			t.Fatalf("scan: %v", ids)
		}
	})
}

// TestWriterFailsTheWholeBatchOnAStoreError: the retry starts at the batch's first record.
func TestWriterFailsTheWholeBatchOnAStoreError(t *testing.T) {
	st := &failingStore{Store: Folder{Root: t.TempDir()}, failKey: "src_b"}
	recs := []events.KinesisEventRecord{
		kinesisRecord("shardId-000000000000", 1, t0, eventData("src_a", "1", "u", t0)),
		kinesisRecord("shardId-000000000000", 2, t0, eventData("src_b", "2", "u", t0)),
		kinesisRecord("shardId-000000000000", 3, t0, eventData("src_a", "3", "u", t0)),
	}
	resp, err := (&Writer{Store: st, Logger: quiet}).Handle(context.Background(), events.KinesisEvent{Records: recs})
	if err != nil {
		t.Fatal(err)
	}
	var failed []string
	for _, f := range resp.BatchItemFailures {
		failed = append(failed, f.ItemIdentifier)
	}
	want := []string{recs[0].Kinesis.SequenceNumber, recs[1].Kinesis.SequenceNumber, recs[2].Kinesis.SequenceNumber}
	if !slices.Equal(failed, want) {
		t.Fatalf("failures %v, want every record", failed)
	}
}

// failingStore fails every Put of a key containing failKey.
type failingStore struct {
	Store
	failKey string
}

func (f *failingStore) Put(ctx context.Context, key string, body []byte) error {
	if strings.Contains(key, f.failKey) {
		return errors.New("injected: put refused")
	}
	return f.Store.Put(ctx, key, body)
}

func TestDedupe(t *testing.T) {
	var got []string
	fn := Dedupe(2*time.Hour, func(key string, r tracking.Record) error {
		got = append(got, r.SourceID+"/"+r.Message.MessageID)
		return nil
	})
	rec := func(src, id string) tracking.Record {
		return tracking.Record{SourceID: src, Message: tracking.Message{MessageID: id}}
	}
	k := func(src string, h int) string { return Key(src, t0.Add(time.Duration(h)*time.Hour), "o") }
	for _, c := range []struct {
		key string
		rec tracking.Record
	}{
		{k("a", 0), rec("a", "1")}, {k("a", 0), rec("a", "1")}, {k("a", 1), rec("a", "1")}, {k("a", 1), rec("a", "2")},
		{k("a", 5), rec("a", "1")}, // beyond the window: a copy this far apart is not one
		{k("b", 0), rec("b", "1")}, {k("b", 0), rec("b", "2")}, {k("b", 0), rec("b", "2")},
	} {
		if err := fn(c.key, c.rec); err != nil {
			t.Fatal(err)
		}
	}
	if want := []string{"a/1", "a/2", "a/1", "b/1", "b/2"}; !slices.Equal(got, want) {
		t.Fatalf("dedupe: %v, want %v", got, want)
	}
}
