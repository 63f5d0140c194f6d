package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Report is bench-results/report.json.
type Report struct {
	Seed      uint64       `json:"seed"`
	Persons   int          `json:"persons"`
	Workload  WorkloadInfo `json:"workload"`
	GoVersion string       `json:"go_version"`
	GOARCH    string       `json:"goarch"`
	CPUs      int          `json:"cpus"`
	StartedAt string       `json:"started_at"`

	EventsSent            int `json:"events_sent"`
	ClientFailures        int `json:"client_failures"`
	EventsStored          int `json:"events_stored"`
	EventsMissing         int `json:"events_missing"`
	EventsDoubleCounted   int `json:"events_double_counted"`
	EventsUnknown         int `json:"events_unknown"`
	Profiles              int `json:"profiles"`
	FalseMerges           int `json:"false_merges"`
	MissedMerges          int `json:"missed_merges"`
	UnresolvedIdentifiers int `json:"unresolved_identifiers"`

	WebhooksExpected  int                      `json:"webhooks_expected"`
	WebhooksDelivered int                      `json:"webhooks_delivered"`
	Webhooks          map[string]ReceiverStats `json:"webhooks"`
	E2ELatencyMs      Latency                  `json:"e2e_latency_ms"`

	IngestEventsPerS    float64 `json:"ingest_events_per_s"`
	IngestCPUUsPerEvent float64 `json:"ingest_cpu_us_per_event"`
	IngestNote          string  `json:"ingest_note"`
	PipelineCPUSeconds  float64 `json:"pipeline_cpu_s"`
	PipelineWallSeconds float64 `json:"pipeline_wall_s"`

	// Request units per event, all pipeline stages; "model" = AWS pricing rules on item sizes,
	// "reported" = ConsumedCapacity as returned by the endpoint (DynamoDB Local).
	WRUPerEvent           float64                `json:"wru_per_event"`
	IndexWRUPerEvent      float64                `json:"index_wru_per_event"` // part of WRUPerEvent
	RRUPerEvent           float64                `json:"rru_per_event"`
	ReportedWRUPerEvent   float64                `json:"reported_wru_per_event"`
	ReportedRRUPerEvent   float64                `json:"reported_rru_per_event"`
	KinesisBytesPerEvent  float64                `json:"kinesis_bytes_per_event"`
	KinesisKiBPerEvent    float64                `json:"kinesis_billed_kib_per_event"`
	Stages                map[string]StageReport `json:"stages"`
	ColdStartMs           map[string]float64     `json:"cold_start_ms"`
	HelloWorldColdStartMs float64                `json:"hello_world_cold_start_ms"`
	ColdStartSamples      map[string]ColdStart   `json:"cold_start_samples,omitempty"`
	ColdStartNote         string                 `json:"cold_start_note"`
	BinaryBytes           map[string]int64       `json:"binary_bytes"`
	// Cost in the default stream mode (provisioned): variable per million events, fixed per
	// month, and both at 1, 10 and 100 million events a month.
	CostPerMillionUSD             float64               `json:"cost_per_million_events_usd"`
	CostBreakdown                 map[string]float64    `json:"cost_per_million_events_breakdown_usd"`
	CostReportedUnitsUSD          float64               `json:"cost_per_million_events_usd_with_reported_units"`
	FixedMonthlyUSD               float64               `json:"fixed_monthly_usd"`
	FixedBreakdown                map[string]float64    `json:"fixed_monthly_breakdown_usd"`
	StreamMode                    string                `json:"stream_mode"`
	OnDemandVariablePerMillionUSD float64               `json:"on_demand_streams_cost_per_million_events_usd"`
	OnDemandFixedMonthlyUSD       float64               `json:"on_demand_streams_fixed_monthly_usd"`
	CostByVolume                  map[string]VolumeCost `json:"cost_by_volume"`
	CostNote                      string                `json:"cost_note"`
	Prices                        map[string]any        `json:"prices"`
	DurationSeconds               float64               `json:"duration_s"`

	// ClientCapacityEventsPerS is how fast the workload generator and analytics-go deliver the
	// workload to a server that only answers 200: the offered load is credible below it.
	ClientCapacityEventsPerS float64 `json:"client_capacity_events_per_s"`

	// Heavy-history workload (run after the main workload, metered separately).
	SegmentsWRUPerChangeByHistory map[string]float64       `json:"segments_wru_per_change_by_history,omitempty"`
	SegmentsStateBytesByHistory   map[string]int           `json:"segments_state_bytes_by_history,omitempty"`
	History                       map[string]HistoryBucket `json:"history,omitempty"`
	HistoryNote                   string                   `json:"history_note,omitempty"`

	// Predictions: every predictive model trained on the seeded simulator's customers.
	Predictions *PredictionsReport `json:"predictions,omitempty"`

	// IdleTick is the schedules' usage over ticks of a stack without traffic (nil: not
	// measured); the fixed cost prices the schedules with it.
	// SegmentsHistoryGrowth is the segments WRU per change at the largest history over that at
	// the smallest (1 = write cost independent of history).
	SegmentsHistoryGrowth float64     `json:"segments_wru_growth_10000_over_10,omitempty"`
	IdleTick              *StageUsage `json:"idle_schedule_ticks,omitempty"`
	TickNote              string      `json:"schedules_cost_note,omitempty"`
}

// WorkloadInfo describes the generated workload.
type WorkloadInfo struct {
	Fingerprint string `json:"fingerprint"`
	Messages    int    `json:"messages"`
	Distinct    int    `json:"distinct"`
	Duplicates  int    `json:"duplicates"`
	Profiles    int    `json:"expected_profiles"`
}

// ReceiverStats is what one webhook receiver saw.
type ReceiverStats struct {
	Expected      int `json:"expected"`
	Delivered     int `json:"delivered"`
	Unexpected    int `json:"unexpected"`
	Redelivered   int `json:"redelivered"`
	BadSignatures int `json:"bad_signatures"`
	Other         int `json:"other_messages"`
}

// Latency is the end-to-end latency distribution under the offered load.
type Latency struct {
	P50                float64 `json:"p50"`
	P95                float64 `json:"p95"`
	P99                float64 `json:"p99"`
	Max                float64 `json:"max"`
	Samples            int     `json:"samples"`
	OfferedEventsPerS  float64 `json:"offered_events_per_s"`
	AchievedEventsPerS float64 `json:"achieved_events_per_s"`
	Definition         string  `json:"definition"`
}

// StageReport is one stage's usage, totals and per event sent.
type StageReport struct {
	StageUsage
	WRUPerEvent          float64 `json:"wru_per_event"`
	IndexWRUPerEvent     float64 `json:"index_wru_per_event"` // part of WRUPerEvent
	RRUPerEvent          float64 `json:"rru_per_event"`
	ReportedWRUPerEvent  float64 `json:"reported_wru_per_event"`
	ReportedRRUPerEvent  float64 `json:"reported_rru_per_event"`
	KinesisBytesPerEvent float64 `json:"kinesis_bytes_per_event"`
	BusyMsPerEvent       float64 `json:"busy_ms_per_event"`
}

func pricesUsed() map[string]any {
	return map[string]any{
		"region": PricesRegion, "date": PricesDate,
		"dynamodb_per_million_wru": DynamoDBPerMillionWRU, "dynamodb_per_million_rru": DynamoDBPerMillionRRU,
		"kinesis_per_shard_hour": KinesisPerShardHour, "kinesis_per_million_put_payload_units": KinesisPerMillionPutUnits,
		"kinesis_per_stream_hour": KinesisPerStreamHour, "kinesis_per_gb_ingested": KinesisPerGBIngested,
		"cloudwatch_per_alarm_month": CloudWatchPerAlarmMonth,
		"kinesis_per_gb_retrieved":   KinesisPerGBRetrieved, "lambda_arm64_per_gb_s": LambdaArm64PerGBSecond,
		"lambda_per_million_requests": LambdaPerMillionRequests, "lambda_memory_mb": LambdaMemoryMB,
		"api_gateway_http_per_million": APIGatewayHTTPPerMillion,
	}
}

// fill computes per-event figures and costs from the pipeline's usage.
func (r *Report) fill(usage map[string]StageUsage, events int) {
	n := float64(events)
	r.Stages = map[string]StageReport{}
	for stage, u := range usage {
		r.Stages[stage] = StageReport{StageUsage: u, WRUPerEvent: u.ModelWRU / n, IndexWRUPerEvent: u.ModelIndexWRU / n, RRUPerEvent: u.ModelRRU / n,
			ReportedWRUPerEvent: u.ReportedWRU / n, ReportedRRUPerEvent: u.ReportedRRU / n,
			KinesisBytesPerEvent: float64(u.KinesisBytes) / n, BusyMsPerEvent: u.BusyMs / n}
	}
	var t StageUsage
	for _, stage := range PipelineStages {
		u := usage[stage]
		t.ModelWRU += u.ModelWRU
		t.ModelIndexWRU += u.ModelIndexWRU
		t.ModelRRU += u.ModelRRU
		t.ReportedWRU += u.ReportedWRU
		t.ReportedRRU += u.ReportedRRU
		t.KinesisBytes += u.KinesisBytes
		t.KinesisBilledKiB += u.KinesisBilledKiB
		t.KinesisPutUnits += u.KinesisPutUnits
		t.BusyMs += u.BusyMs
		t.Invocations += u.Invocations
	}
	r.WRUPerEvent, r.RRUPerEvent, r.IndexWRUPerEvent = t.ModelWRU/n, t.ModelRRU/n, t.ModelIndexWRU/n
	r.ReportedWRUPerEvent, r.ReportedRRUPerEvent = t.ReportedWRU/n, t.ReportedRRU/n
	r.KinesisBytesPerEvent, r.KinesisKiBPerEvent = float64(t.KinesisBytes)/n, float64(t.KinesisBilledKiB)/n
	tick, how := measuredTick(usage[StageSchedules]), "per tick as measured during the main workload (an upper bound for an idle stack: it includes the work the traffic caused)"
	if r.IdleTick != nil {
		tick, how = measuredTick(*r.IdleTick), fmt.Sprintf("per tick as measured on an idle stack (%d ticks)", r.IdleTick.Invocations)
	}
	r.TickNote = how
	r.fillCost(t, float64(usage[StageIngest].Invocations), n, perEventLoad(usage, n), tick)
}

// fillCost prices the pipeline's total usage t for n events.
func (r *Report) fillCost(t StageUsage, apiRequests, n float64, load map[string]streamLoad, tick tickCost) {
	scale := perMillion / n
	ddb := func(w, rd float64) float64 {
		return (w*DynamoDBPerMillionWRU + rd*DynamoDBPerMillionRRU) / perMillion * scale
	}
	b := map[string]float64{
		"dynamodb":                  ddb(t.ModelWRU, t.ModelRRU),
		"kinesis_put_payload_units": float64(t.KinesisPutUnits) / perMillion * KinesisPerMillionPutUnits * scale,
		"lambda_duration":           t.BusyMs / 1000 * LambdaMemoryMB / 1024 * LambdaArm64PerGBSecond * scale,
		"lambda_requests":           float64(t.Invocations) / perMillion * LambdaPerMillionRequests * scale,
		"api_gateway":               apiRequests / perMillion * APIGatewayHTTPPerMillion * scale,
	}
	for k, v := range archiveItems(load["events"]) {
		b[k] = v
	}
	r.CostBreakdown = b
	r.CostPerMillionUSD = sum(b)
	r.CostReportedUnitsUSD = r.CostPerMillionUSD - b["dynamodb"] + ddb(t.ReportedWRU, t.ReportedRRU)
	r.StreamMode = fmt.Sprintf("provisioned, %d shard per stream (infra default)", ShardsPerStream)
	r.FixedBreakdown = fixedItems(StreamCount*ShardsPerStream, tick)
	r.FixedMonthlyUSD = sum(r.FixedBreakdown)

	onDemandKinesis := float64(t.KinesisBilledKiB)*1024/gibibyte*KinesisPerGBIngested*scale +
		float64(t.KinesisBytes)/gibibyte*KinesisPerGBRetrieved*scale + archiveOnDemandRetrieval(load["events"])
	r.OnDemandVariablePerMillionUSD = r.CostPerMillionUSD - b["kinesis_put_payload_units"] + onDemandKinesis
	r.OnDemandFixedMonthlyUSD = r.FixedMonthlyUSD - r.FixedBreakdown["kinesis_shard_hours"] + StreamCount*HoursPerMonth*KinesisPerStreamHour
	r.costByVolume(load, tick)
	r.CostNote = costNote(r)
}

// Markdown renders the summary table.
func (r *Report) Markdown() string {
	var b strings.Builder
	row := func(k, v string) { fmt.Fprintf(&b, "| %s | %s |\n", k, v) }
	fmt.Fprintf(&b, "## Benchmark (seed %d, %d persons, workload %s, %s %s, %d CPUs)\n\n", r.Seed, r.Persons, r.Workload.Fingerprint, r.GoVersion, r.GOARCH, r.CPUs)
	b.WriteString("| metric | value |\n|---|---|\n")
	row("events sent (incl. duplicates)", fmt.Sprintf("%d (%d distinct, %d duplicate deliveries)", r.EventsSent, r.Workload.Distinct, r.Workload.Duplicates))
	row("events stored / missing / double counted", fmt.Sprintf("%d / %d / %d", r.EventsStored, r.EventsMissing, r.EventsDoubleCounted))
	row("profiles (expected)", fmt.Sprintf("%d (%d)", r.Profiles, r.Workload.Profiles))
	row("false merges / missed merges", fmt.Sprintf("%d / %d", r.FalseMerges, r.MissedMerges))
	row("webhooks delivered / expected", fmt.Sprintf("%d / %d", r.WebhooksDelivered, r.WebhooksExpected))
	names := make([]string, 0, len(r.Webhooks))
	for n := range r.Webhooks {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		s := r.Webhooks[n]
		row("  receiver "+n, fmt.Sprintf("%d/%d, %d unexpected, %d redelivered, %d bad signatures", s.Delivered, s.Expected, s.Unexpected, s.Redelivered, s.BadSignatures))
	}
	l := r.E2ELatencyMs
	row("e2e latency p50 / p95 / p99 (ms)", fmt.Sprintf("%.0f / %.0f / %.0f (n=%d, offered %.0f ev/s, achieved %.0f ev/s; client capacity %.0f ev/s)",
		l.P50, l.P95, l.P99, l.Samples, l.OfferedEventsPerS, l.AchievedEventsPerS, r.ClientCapacityEventsPerS))
	row("ingest throughput (burst)", fmt.Sprintf("%.0f events/s, %.0f µs CPU/event", r.IngestEventsPerS, r.IngestCPUUsPerEvent))
	row("WRU / RRU per event (AWS rules)", fmt.Sprintf("%.2f / %.2f (WRU: %.2f table + %.2f index)", r.WRUPerEvent, r.RRUPerEvent, r.WRUPerEvent-r.IndexWRUPerEvent, r.IndexWRUPerEvent))
	row("WRU / RRU per event (reported by DynamoDB Local)", fmt.Sprintf("%.2f / %.2f", r.ReportedWRUPerEvent, r.ReportedRRUPerEvent))
	row("Kinesis bytes per event (all streams)", fmt.Sprintf("%.0f (%.2f KiB billed)", r.KinesisBytesPerEvent, r.KinesisKiBPerEvent))
	for _, s := range PipelineStages {
		st := r.Stages[s]
		row("  stage "+s, fmt.Sprintf("%.2f WRU (%.2f index), %.2f RRU, %.0f Kinesis B, %.2f ms handler time per event; %d invocations", st.WRUPerEvent, st.IndexWRUPerEvent, st.RRUPerEvent, st.KinesisBytesPerEvent, st.BusyMsPerEvent, st.Invocations))
	}
	if len(r.ColdStartMs) > 0 {
		fns := make([]string, 0, len(r.ColdStartMs))
		for n := range r.ColdStartMs {
			fns = append(fns, n)
		}
		sort.Strings(fns)
		var cs, sz []string
		for _, n := range fns {
			cs = append(cs, fmt.Sprintf("%s %.0f", n, r.ColdStartMs[n]))
			sz = append(sz, fmt.Sprintf("%s %.1f", n, float64(r.BinaryBytes[n])/(1<<20)))
		}
		row("cold start ms (median)", strings.Join(cs, ", ")+fmt.Sprintf("; hello world %.0f", r.HelloWorldColdStartMs))
		row("arm64 binary MiB", strings.Join(sz, ", ")+fmt.Sprintf("; hello world %.1f", float64(r.BinaryBytes[HelloWorld])/(1<<20)))
	}
	row("variable cost per million events (USD)", fmt.Sprintf("**%.2f** (%s); with DynamoDB Local's reported units %.2f", r.CostPerMillionUSD, byValue(r.CostBreakdown), r.CostReportedUnitsUSD))
	row("fixed cost per month (USD)", fmt.Sprintf("**%.2f** (%s); %s", r.FixedMonthlyUSD, byValue(r.FixedBreakdown), r.StreamMode))
	row("on-demand streams instead", fmt.Sprintf("%.2f per million events + %.2f per month", r.OnDemandVariablePerMillionUSD, r.OnDemandFixedMonthlyUSD))
	row("run time", fmt.Sprintf("%.0f s", r.DurationSeconds))
	r.volumeTable(&b)
	r.historyTable(&b)
	r.predictionsTable(&b)
	fmt.Fprintf(&b, "\nCost: %s\n", r.CostNote)
	if r.HistoryNote != "" {
		fmt.Fprintf(&b, "\nHistory: %s\n", r.HistoryNote)
	}
	return b.String()
}

// byValue lists a breakdown's parts, largest first.
func byValue(m map[string]float64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] })
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %.2f", k, m[k])
	}
	return strings.Join(parts, ", ")
}

func (r *Report) volumeTable(b *strings.Builder) {
	if len(r.CostByVolume) == 0 {
		return
	}
	b.WriteString("\n| events/month | variable USD | fixed USD | total USD | per million | shards/stream | on-demand streams total |\n|---|---|---|---|---|---|---|\n")
	for _, v := range Volumes {
		c := r.CostByVolume[v.Key]
		fmt.Fprintf(b, "| %s | %.2f | %.2f | **%.2f** | %.2f | %d | %.2f |\n", v.Key, c.VariableUSD, c.FixedUSD, c.TotalUSD, c.PerMillionUSD, c.ShardsPerStream, c.OnDemandTotalUSD)
	}
}

func (r *Report) historyTable(b *strings.Builder) {
	if len(r.History) == 0 {
		return
	}
	b.WriteString("\n| past events | segments WRU / change | segments RRU / change | segments ms / change | state item bytes | identity WRU / RRU per change |\n|---|---|---|---|---|---|\n")
	for _, n := range HistorySizes {
		h, ok := r.History[strconv.Itoa(n)]
		if !ok {
			continue
		}
		fmt.Fprintf(b, "| %d | %.2f | %.2f | %.1f | %d | %.2f / %.2f |\n", n, h.SegmentsWRUPerChange, h.SegmentsRRUPerChange, h.SegmentsMsPerChange, h.StateItemBytes, h.IdentityWRUPerChange, h.IdentityRRUPerChange)
	}
	fmt.Fprintf(b, "\nSegments WRU per change, 10,000 past events over 10: %.2f×\n", r.SegmentsHistoryGrowth)
}

// Write saves report.json and report.md into dir.
func (r *Report) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	j, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), append(j, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "report.md"), []byte(r.Markdown()), 0o644)
}
