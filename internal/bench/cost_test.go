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
	want := map[string]float64{"kinesis_shard_hours": 3 * 730 * 0.015, "cloudwatch_alarms": 1.9, "schedules": tick, "privacy_key_secret": 0.4}
	for k, v := range want {
		if !near(r.FixedBreakdown[k], v) {
			t.Errorf("fixed %s = %.4f, want %.4f", k, r.FixedBreakdown[k], v)
		}
	}
	// Issue 12's bound was $35; the privacy runner (its two alarms, $0.20) and the privacy key
	// secret ($0.40) add $0.60 to it.
	if r.FixedMonthlyUSD > 35.6 || !near(r.FixedMonthlyUSD, sum(want)) {
		t.Errorf("fixed %.2f USD/month, want %.2f (at most 35.60)", r.FixedMonthlyUSD, sum(want))
	}
	if od := r.OnDemandFixedMonthlyUSD - (r.FixedMonthlyUSD - want["kinesis_shard_hours"]); !near(od, 87.6) {
		t.Errorf("on-demand stream-hours %.2f, want 87.60", od)
	}
	if !strings.Contains(r.CostNote, "provisioned") {
		t.Errorf("cost note does not state the stream mode: %s", r.CostNote)
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
