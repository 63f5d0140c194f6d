package bench

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9*math.Max(1, math.Abs(b)) }

// usage is a pipeline run of 1,000 events: 2 WRU and 1 RRU per event, one 600-byte record per
// event on each stream, 10 s of handler time, 100 ingest requests and 60 idle schedule ticks.
func usage() map[string]StageUsage {
	rec := func(n int) StageUsage {
		return StageUsage{KinesisRecords: n, KinesisBytes: int64(600 * n), KinesisBilledKiB: int64(n), KinesisPutUnits: int64(n)}
	}
	ing, id, seg := rec(1000), rec(1000), rec(1000)
	ing.Invocations, ing.BusyMs = 100, 2000
	id.ModelWRU, id.ModelRRU, id.Invocations, id.BusyMs = 1500, 600, 50, 5000
	seg.ModelWRU, seg.ModelRRU, seg.Invocations, seg.BusyMs = 500, 400, 50, 3000
	return map[string]StageUsage{StageIngest: ing, StageIdentity: id, StageSegments: seg,
		StageSchedules: {Invocations: 60, BusyMs: 600, ModelRRU: 60}}
}

func TestCostSplitsVariableAndFixed(t *testing.T) {
	var r Report
	r.fill(usage(), 1000)
	ddb := (2000*DynamoDBPerMillionWRU + 1060*DynamoDBPerMillionRRU) / 1000 // per million events
	put := 3 * KinesisPerMillionPutUnits                                    // three records per event
	if !near(r.CostBreakdown["dynamodb"], ddb) || !near(r.CostBreakdown["kinesis_put_payload_units"], put) {
		t.Errorf("breakdown %v: want dynamodb %.4f, PUT units %.4f", r.CostBreakdown, ddb, put)
	}
	if _, ok := r.CostBreakdown["kinesis_ingest"]; ok {
		t.Error("the default (provisioned) mode has no per-GB ingest charge")
	}
	tick := ScheduleInvocationsPerMonth * (LambdaPerMillionRequests/perMillion + 0.01*LambdaMemoryMB/1024*LambdaArm64PerGBSecond + 1*DynamoDBPerMillionRRU/perMillion)
	// The archive: one source, an object every 900 s, each $0.005/1,000 (Firehose) + $0.005/1,000 (S3 PUT).
	objects := 730 * 4 * 0.01 / 1000
	want := map[string]float64{"kinesis_shard_hours": 3 * 730 * 0.015, "cloudwatch_alarms": 2.0, "schedules": tick, "privacy_key_secret": 0.4,
		"archive_objects_by_time": objects}
	for k, v := range want {
		if !near(r.FixedBreakdown[k], v) {
			t.Errorf("fixed %s = %.4f, want %.4f", k, r.FixedBreakdown[k], v)
		}
	}
	// Issue 12's bound was $35; the privacy runner (its two alarms, $0.20) and the privacy key
	// secret ($0.40) add $0.60 to it, the archive (its alarm, $0.10, and its time-triggered
	// objects, $0.03) $0.13.
	if r.FixedMonthlyUSD > 35.73 || !near(r.FixedMonthlyUSD, sum(want)) {
		t.Errorf("fixed %.2f USD/month, want %.2f (at most 35.73)", r.FixedMonthlyUSD, sum(want))
	}
	if od := r.OnDemandFixedMonthlyUSD - (r.FixedMonthlyUSD - want["kinesis_shard_hours"]); !near(od, 87.6) {
		t.Errorf("on-demand stream-hours %.2f, want 87.60", od)
	}
	if !strings.Contains(r.CostNote, "provisioned") {
		t.Errorf("cost note does not state the stream mode: %s", r.CostNote)
	}
}

// TestArchiveCost: the archive's Firehose is priced by volume from the events stream's bytes:
// ingestion per GB with each record rounded up to 5 KB, dynamic partitioning per GB delivered
// (records plus newlines) and per object, and, on-demand, a second reader's retrieval.
func TestArchiveCost(t *testing.T) {
	var r Report
	r.fill(usage(), 1000) // 600 bytes per event on each stream
	ingest := 1e6 * 5 * 1024 / (1 << 30) * 0.029
	delivered := 1e6 * 601.0
	partitioning := delivered/(1<<30)*0.020 + delivered/(128<<20)*(0.005+0.005)/1000
	if !near(r.CostBreakdown["archive_firehose_ingest"], ingest) || !near(r.CostBreakdown["archive_dynamic_partitioning"], partitioning) {
		t.Errorf("archive per million events: ingest %.5f, partitioning %.5f; want %.5f, %.5f",
			r.CostBreakdown["archive_firehose_ingest"], r.CostBreakdown["archive_dynamic_partitioning"], ingest, partitioning)
	}
	others := 0.0
	for k, v := range r.CostBreakdown {
		if !strings.HasPrefix(k, "archive_") {
			others += v
		}
	}
	if !near(r.CostPerMillionUSD, others+ingest+partitioning) {
		t.Errorf("variable cost %.4f does not include the archive (%.4f without it)", r.CostPerMillionUSD, others)
	}
	// A 6,000-byte record is billed as 10 KB of Firehose ingestion.
	big := archiveItems(streamLoad{records: 1, bytes: 6000, readers: 2})
	if want := 1e6 * 10 * 1024 / (1 << 30) * 0.029; !near(big["archive_firehose_ingest"], want) {
		t.Errorf("6,000-byte records: ingest %.5f, want %.5f", big["archive_firehose_ingest"], want)
	}
	// On-demand streams bill the delivery stream's reads of the events stream.
	retrieval := 1e6 * 600.0 / (1 << 30) * 0.04
	if !near(archiveOnDemandRetrieval(streamLoad{records: 1, bytes: 600, readers: 2}), retrieval) {
		t.Errorf("on-demand archive retrieval %.5f, want %.5f", archiveOnDemandRetrieval(streamLoad{records: 1, bytes: 600, readers: 2}), retrieval)
	}
	if !strings.Contains(r.CostNote, "Firehose") {
		t.Errorf("cost note does not mention the archive: %s", r.CostNote)
	}
	// The delivery stream is a second reader of the events stream. A shard serves 2 MB/s of
	// reads per 1 MB/s of writes, so two readers never need more shards than the writes do
	// (1e9 events a month of 1,500 bytes: 5.4 MB/s at peak, 6 shards); a third would.
	if l := perEventLoad(usage(), 1000)["events"]; l.readers != 2 {
		t.Errorf("events stream readers %d, want 2 (identity and the archive)", l.readers)
	}
	for readers, want := range map[int]int{1: 6, 2: 6, 3: 9} {
		if n := shardsFor(streamLoad{records: 1, bytes: 1500, readers: readers}, 1e9); n != want {
			t.Errorf("%d readers: %d shards, want %d", readers, n, want)
		}
	}
}

func TestFixedCostUsesIdleTicks(t *testing.T) {
	idle := StageUsage{Invocations: 4, BusyMs: 40, ModelRRU: 4}
	r := Report{IdleTick: &idle}
	r.fill(usage(), 1000)
	tick := ScheduleInvocationsPerMonth * (LambdaPerMillionRequests/perMillion + 0.01*LambdaMemoryMB/1024*LambdaArm64PerGBSecond + 1*DynamoDBPerMillionRRU/perMillion)
	if !near(r.FixedBreakdown["schedules"], tick) || !strings.Contains(r.CostNote, "idle stack (4 ticks)") {
		t.Errorf("schedules %.4f, want %.4f from the idle ticks; note: %s", r.FixedBreakdown["schedules"], tick, r.CostNote)
	}
}

func TestCostByVolume(t *testing.T) {
	var r Report
	r.fill(usage(), 1000)
	for _, v := range Volumes {
		c, ok := r.CostByVolume[v.Key]
		if !ok {
			t.Fatalf("no cost for %s", v.Key)
		}
		if !near(c.VariableUSD, r.CostPerMillionUSD*v.Events/1e6) || !near(c.TotalUSD, c.VariableUSD+c.FixedUSD) {
			t.Errorf("%s: %+v", v.Key, c)
		}
		// 100 M events a month peak at ~380 records/s per stream: one shard still suffices.
		if c.ShardsPerStream != 1 || !near(c.FixedUSD, r.FixedMonthlyUSD) {
			t.Errorf("%s: %d shards, fixed %.2f; want 1 and %.2f", v.Key, c.ShardsPerStream, c.FixedUSD, r.FixedMonthlyUSD)
		}
	}
	// 1 billion a month peaks at ~3,800 records/s: four shards on each stream.
	if n := shardsFor(streamLoad{records: 1, bytes: 600}, 1e9); n != 4 {
		t.Errorf("1e9 events/month: %d shards, want 4", n)
	}
	b, _ := json.Marshal(&r)
	for _, k := range []string{`"cost_by_volume":{"100M":`, `"fixed_monthly_usd":`, `"on_demand_streams_total_usd":`} {
		if !strings.Contains(string(b), k) {
			t.Errorf("report.json lacks %s", k)
		}
	}
	md := r.Markdown()
	if !strings.Contains(md, "| 100M |") || !strings.Contains(md, "fixed cost per month") {
		t.Errorf("report.md lacks the cost table:\n%s", md)
	}
}

func TestHistoryBodies(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	bodies, total, err := historyBodies(7, now)
	if err != nil {
		t.Fatal(err)
	}
	again, _, _ := historyBodies(7, now)
	if string(bodies[len(bodies)-1]) != string(again[len(again)-1]) {
		t.Error("history is not deterministic")
	}
	per := map[string]int{}
	for _, b := range bodies {
		var doc struct {
			Batch []struct {
				UserID    string    `json:"userId"`
				MessageID string    `json:"messageId"`
				Timestamp time.Time `json:"timestamp"`
				Type      string    `json:"type"`
			} `json:"batch"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		if len(doc.Batch) > historyBatch || len(b) > 500<<10 {
			t.Fatalf("batch of %d events, %d bytes", len(doc.Batch), len(b))
		}
		for _, e := range doc.Batch {
			per[e.UserID]++
			if e.Type != "track" || e.Timestamp.Before(now.Add(-historySpan)) || !e.Timestamp.Before(now) {
				t.Fatalf("event %s: %s at %s", e.MessageID, e.Type, e.Timestamp)
			}
		}
	}
	want := 0
	for _, n := range HistorySizes {
		want += n
		if per[historyUser(7, n)] != n {
			t.Errorf("profile with %d past events got %d", n, per[historyUser(7, n)])
		}
	}
	if total != want {
		t.Errorf("total %d, want %d", total, want)
	}
}
