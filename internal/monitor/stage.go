package monitor

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/serverless-cdp/cdp/internal/store"
)

// ForStage is a pipeline stage's recorder of stream lag (one per container).
func ForStage(db store.Client, table string, logger *slog.Logger) *Recorder {
	return NewRecorder(NewStore(db, table), RecorderOptions{Logger: logger})
}

// KinesisHandler is a stage's Kinesis handler with partial batch failures.
type KinesisHandler func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error)

// Kinesis wraps a stage's Kinesis handler: each batch records its records and the largest
// wait of one in the stream (arrival to the start of the invocation), then flushes when due.
func Kinesis(rec *Recorder, stage string, h KinesisHandler) KinesisHandler {
	return func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
		start := time.Now()
		oldest := earliest(ev.Records, func(r events.KinesisEventRecord) time.Time { return r.Kinesis.ApproximateArrivalTimestamp.Time })
		resp, err := h(ctx, ev)
		observe(ctx, rec, stage, len(ev.Records), oldest, start)
		return resp, err
	}
}

// InvokeHandler is a stage's Lambda entry point taking any event (Kinesis or schedule).
type InvokeHandler func(ctx context.Context, raw json.RawMessage) (any, error)

// Invoke wraps a stage's entry point like Kinesis does, for its Kinesis events.
func Invoke(rec *Recorder, stage string, h InvokeHandler) InvokeHandler {
	return func(ctx context.Context, raw json.RawMessage) (any, error) {
		start := time.Now()
		var probe struct {
			Records []probeRecord `json:"Records"`
		}
		_ = json.Unmarshal(raw, &probe) // not a Kinesis event: nothing to record
		oldest := earliest(probe.Records, func(r probeRecord) time.Time { return r.Kinesis.Arrival.Time })
		out, err := h(ctx, raw)
		observe(ctx, rec, stage, len(probe.Records), oldest, start)
		return out, err
	}
}

// probeRecord is the part of a Kinesis event record Invoke reads.
type probeRecord struct {
	Kinesis struct {
		Arrival events.SecondsEpochTime `json:"approximateArrivalTimestamp"`
	} `json:"kinesis"`
}

// earliest is the earliest arrival among records (zero for none).
func earliest[T any](records []T, arrival func(T) time.Time) time.Time {
	var oldest time.Time
	for _, r := range records {
		if t := arrival(r); oldest.IsZero() || t.Before(oldest) {
			oldest = t
		}
	}
	return oldest
}

func observe(ctx context.Context, rec *Recorder, stage string, n int, oldest, start time.Time) {
	if n == 0 {
		return
	}
	rec.Processed(stage, n, max(0, start.Sub(oldest)))
	rec.FlushIfDue(ctx)
}
