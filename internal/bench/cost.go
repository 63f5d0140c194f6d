package bench

import (
	"fmt"
	"math"
)

// VolumeCost is the monthly bill at one volume, in the default (provisioned) stream mode, with
// the on-demand stream mode next to it.
type VolumeCost struct {
	EventsPerMonth   float64 `json:"events_per_month"`
	VariableUSD      float64 `json:"variable_usd"`
	FixedUSD         float64 `json:"fixed_usd"`
	TotalUSD         float64 `json:"total_usd"`
	PerMillionUSD    float64 `json:"per_million_events_usd"`
	ShardsPerStream  int     `json:"shards_per_stream"`
	OnDemandTotalUSD float64 `json:"on_demand_streams_total_usd"`
}

// Volumes are the monthly event volumes of cost_by_volume.
var Volumes = []struct {
	Key    string
	Events float64
}{{"1M", 1e6}, {"10M", 1e7}, {"100M", 1e8}}

// streamLoad is what one event puts on each stream: records and bytes (for shard sizing),
// and how many consumers read them.
type streamLoad struct {
	records, bytes float64
	readers        int
}

// streamOf maps the stage that puts a record to the stream it goes to.
func streamOf(stage string) string {
	switch stage {
	case StageIngest:
		return "events"
	case StageIdentity:
		return "changes"
	default: // segments, its schedule and activation retries put activations
		return "activations"
	}
}

// perEventLoad sums each stream's records and bytes per event.
func perEventLoad(usage map[string]StageUsage, n float64) map[string]streamLoad {
	load := map[string]streamLoad{"events": {readers: EventsStreamReaders}, "changes": {readers: 1}, "activations": {readers: 1}}
	for _, stage := range PipelineStages {
		u := usage[stage]
		l := load[streamOf(stage)]
		l.records += float64(u.KinesisRecords) / n
		l.bytes += float64(u.KinesisBytes) / n
		load[streamOf(stage)] = l
	}
	return load
}

// shardsFor is the shard count one stream needs at a monthly volume, sized for the peak
// (PeakFactor × the average rate): max(write MB/s, records/s ÷ 1,000, read MB/s of all its
// readers ÷ 2), at least ShardsPerStream.
func shardsFor(l streamLoad, eventsPerMonth float64) int {
	peak := eventsPerMonth / (HoursPerMonth * 3600) * PeakFactor
	need := math.Max(peak*l.records/KinesisShardWriteRecordsPerS, peak*l.bytes/KinesisShardWriteBytesPerS)
	need = math.Max(need, peak*l.bytes*float64(max(1, l.readers))/KinesisShardReadBytesPerS)
	return max(ShardsPerStream, int(math.Ceil(need)))
}

// fixedItems is the default stack's bill before traffic (infra/README.md, "Stream capacity and
// fixed cost"), with the schedules priced at what one tick cost in this run.
func fixedItems(shards int, tick tickCost) map[string]float64 {
	return map[string]float64{
		"kinesis_shard_hours": float64(shards) * HoursPerMonth * KinesisPerShardHour,
		"cloudwatch_alarms":   CloudWatchAlarms * CloudWatchPerAlarmMonth,
		"schedules":           ScheduleInvocationsPerMonth * tick.usd(),
		"privacy_key_secret":  SecretsManagerPerSecretMonth,
		// The archive's objects written by the buffer interval, whatever the volume (an upper
		// bound: at high volume the size-triggered objects, priced per event, replace them).
		"archive_objects_by_time": ArchiveSources * ArchiveObjectsPerSourceMonth * archiveObjectUSD,
	}
}

// archiveObjectUSD is what one archive object costs: Firehose's dynamic-partitioning object
// charge and the S3 PUT that writes it.
const archiveObjectUSD = (FirehosePerThousandObjects + S3PerThousandPuts) / 1000

// archiveItems is the raw event archive's variable cost per million events, from what one
// event puts on the events stream: Firehose ingestion (records rounded up to 5 KB),
// dynamic partitioning per GB (the records plus the newline Firehose appends), and the
// objects a full buffer (ArchiveBufferMB) writes.
func archiveItems(events streamLoad) map[string]float64 {
	if events.records == 0 {
		return map[string]float64{"archive_firehose_ingest": 0, "archive_dynamic_partitioning": 0}
	}
	records, bytes := events.records*perMillion, events.bytes*perMillion
	billed := records * math.Ceil(events.bytes/events.records/FirehoseIngestRoundingBytes) * FirehoseIngestRoundingBytes
	delivered := bytes + records // one newline per record
	objects := delivered / (ArchiveBufferMB << 20)
	return map[string]float64{
		"archive_firehose_ingest":      billed / gibibyte * FirehosePerGBIngested,
		"archive_dynamic_partitioning": delivered/gibibyte*FirehosePartitioningPerGB + objects*archiveObjectUSD,
	}
}

// archiveOnDemandRetrieval is what on-demand streams add for the archive per million events:
// its delivery stream is a second reader of the events stream, and on-demand bills every
// reader's retrieved bytes.
func archiveOnDemandRetrieval(events streamLoad) float64 {
	return events.bytes * perMillion * float64(max(0, events.readers-1)) / gibibyte * KinesisPerGBRetrieved
}

// tickCost is the measured average cost of one schedule invocation.
type tickCost struct{ gbs, wru, rru float64 }

func (t tickCost) usd() float64 {
	return LambdaPerMillionRequests/perMillion + t.gbs*LambdaArm64PerGBSecond +
		t.wru*DynamoDBPerMillionWRU/perMillion + t.rru*DynamoDBPerMillionRRU/perMillion
}

func measuredTick(u StageUsage) tickCost {
	if u.Invocations == 0 {
		return tickCost{}
	}
	n := float64(u.Invocations)
	return tickCost{gbs: u.BusyMs / 1000 * LambdaMemoryMB / 1024 / n, wru: u.ModelWRU / n, rru: u.ModelRRU / n}
}

func sum(m map[string]float64) float64 {
	t := 0.0
	for _, v := range m {
		t += v
	}
	return t
}

// costByVolume prices the volumes: variable per million events in the default mode, fixed
// with the shards each volume needs; on-demand with its own variable cost and stream-hours.
func (r *Report) costByVolume(load map[string]streamLoad, tick tickCost) {
	r.CostByVolume = map[string]VolumeCost{}
	for _, v := range Volumes {
		shards, per := 0, 0
		for _, s := range []string{"events", "changes", "activations"} {
			n := shardsFor(load[s], v.Events)
			shards += n
			per = max(per, n)
		}
		fixed := sum(fixedItems(shards, tick))
		variable := r.CostPerMillionUSD * v.Events / perMillion
		onDemand := r.OnDemandVariablePerMillionUSD*v.Events/perMillion + r.OnDemandFixedMonthlyUSD
		r.CostByVolume[v.Key] = VolumeCost{EventsPerMonth: v.Events, VariableUSD: variable, FixedUSD: fixed,
			TotalUSD: variable + fixed, PerMillionUSD: (variable + fixed) / (v.Events / perMillion),
			ShardsPerStream: per, OnDemandTotalUSD: onDemand}
	}
}

func costNote(r *Report) string {
	return fmt.Sprintf("%s prices of %s (internal/bench/prices.go). Default stack (infra/): provisioned Kinesis streams, %d shard each, 24 h retention. "+
		"Variable: DynamoDB at AWS-rule request units, Kinesis PUT payload units (records rounded up to 25 KB; reads are not billed), Lambda arm64 %d MB billed for the measured handler time against the local emulators (an upper bound: AWS round trips are faster) and one request per local invocation (local pollers batch differently from event source mappings), API Gateway per ingest request. "+
		"Fixed: shard-hours, %d CloudWatch alarms, the three one-minute schedules (requests, and run time and request units %s), the privacy key secret, the archive objects Firehose writes every %d s for %d source. "+
		"Archive (Kinesis Data Firehose with dynamic partitioning into S3): ingestion per GB in 5 KB records, partitioning per GB and per object (plus its S3 PUT); JQ processing hours not included. "+
		"cost_by_volume sizes shards for %d× the average rate. On-demand streams (-c cdp:streamMode=on-demand): %.2f USD/month fixed, %.2f USD per million events variable (ingest per GB in 1 KiB records, retrieval per GB). "+
		"Not included: storage (the table, the archive bucket), PITR, CloudWatch Logs, data transfer.",
		PricesRegion, PricesDate, ShardsPerStream, LambdaMemoryMB, CloudWatchAlarms, r.TickNote, ArchiveBufferSeconds, ArchiveSources, PeakFactor, r.OnDemandFixedMonthlyUSD, r.OnDemandVariablePerMillionUSD)
}
