package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/serverless-cdp/cdp/internal/tracking"
)

// InvalidSource is the source folder of records that are not a tracking.Record with a
// sourceId and a messageId: kept (never dropped) under source=_invalid/, each line an
// InvalidLine, for inspection. Scan without Sources skips it; the privacy holder reads it.
const InvalidSource = "_invalid"

// ReplaySource is the folder of records a pipeline replay put back on the events stream
// (tracking.Record.Replay set): they are in the archive already, under their source, so they
// are kept apart (Firehose files them there too) and scans of the sources never read them.
const ReplaySource = "_replay"

// InvalidLine is a line of an object under InvalidSource: the record's bytes (base64 in
// JSON, so any bytes survive), why it was refused, and where it came from.
type InvalidLine struct {
	Reason  string `json:"reason"`
	EventID string `json:"eventId"` // shardId:sequenceNumber
	Data    []byte `json:"data"`
}

// Writer archives the `events` stream: a Kinesis handler (the event source mapping's batch, or
// the local poller's) that writes every record of a batch, exactly as its bytes, into one
// object per (source, hour of arrival) of the batch. Locally it writes the folder `make run`
// keeps; on AWS, Firehose does the same job (see the README's Archive section).
//
// An object is named after the shard and the sequence number of its first record in the
// batch: source=<id>/dt=…/hour=…/<shardId>-<firstSequenceNumber>.json.gz. Any store error
// fails the whole batch, so it is delivered again from the same first record (Lambda and the
// local poller retry from the first failed record); every object of the retry then has the
// name, and a superset or a prefix of the records, of the object it replaces. A retry that
// holds more records (more arrived meanwhile) or fewer (a smaller batch: the rest follow in the
// next batch, under their own names) overwrites instead of duplicating: no record is archived
// twice and none is lost. A record is archived twice only when a batch is delivered again from
// another record than its first: after a stage gave up on a record (MaxRetries, then the
// on-failure destination), or on AWS, where Firehose (not this Writer) delivers at least once.
// Readers dedupe by (sourceId, messageId) (Dedupe).
type Writer struct {
	Store  Store
	Logger *slog.Logger // nil: slog.Default()
}

// group is the records of one object, in stream order.
type group struct {
	key   string
	lines [][]byte
	recs  []events.KinesisEventRecord
}

// Handle writes the batch: one PUT per (source, hour of arrival) in it. At the first store
// error it stops and reports every record of the batch as failed (see Writer).
func (w *Writer) Handle(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
	var resp events.KinesisEventResponse
	groups, invalid := groupBatch(ev.Records)
	for _, g := range groups {
		body, err := Encode(g.lines)
		if err == nil {
			err = w.Store.Put(ctx, g.key, body)
		}
		if err != nil {
			w.logger().Warn("archive write failed; the batch will be retried", "key", g.key, "records", len(ev.Records), "err", err)
			for _, r := range ev.Records {
				resp.BatchItemFailures = append(resp.BatchItemFailures, events.KinesisBatchItemFailure{ItemIdentifier: r.Kinesis.SequenceNumber})
			}
			return resp, nil
		}
	}
	if invalid > 0 {
		w.logger().Warn("archived records that are not events under "+InvalidSource, "records", invalid)
	}
	w.logger().Debug("archived batch", "records", len(ev.Records), "objects", len(groups))
	return resp, nil
}

func (w *Writer) logger() *slog.Logger {
	if w.Logger == nil {
		return slog.Default()
	}
	return w.Logger
}

// groupBatch splits a batch into objects by (source, hour of arrival), in the order of their
// first record, and counts the invalid records.
func groupBatch(recs []events.KinesisEventRecord) ([]*group, int) {
	type gk struct {
		source string
		hour   time.Time
	}
	byKey := map[gk]*group{}
	var order []*group
	invalid := 0
	for _, r := range recs {
		src, line := archiveLine(r)
		if src == InvalidSource {
			invalid++
		}
		k := gk{src, r.Kinesis.ApproximateArrivalTimestamp.UTC().Truncate(time.Hour)}
		g := byKey[k]
		if g == nil {
			g = &group{key: HourPrefix(k.source, k.hour)}
			byKey[k] = g
			order = append(order, g)
		}
		g.lines = append(g.lines, line)
		g.recs = append(g.recs, r)
	}
	for _, g := range order {
		g.key += shardOf(g.recs[0]) + "-" + g.recs[0].Kinesis.SequenceNumber + Suffix
	}
	return order, invalid
}

// archiveLine returns the source folder and the line of one record: a valid record exactly as
// its bytes (compacted if it spans lines, which leaves its JSON value unchanged), anything
// else as an InvalidLine under InvalidSource.
func archiveLine(r events.KinesisEventRecord) (string, []byte) {
	data := r.Kinesis.Data
	var rec tracking.Record
	reason := ""
	switch err := json.Unmarshal(data, &rec); {
	case err != nil:
		reason = "not a JSON event record"
	case !validSourceID(rec.SourceID):
		reason = "no valid sourceId"
	case rec.Message.MessageID == "":
		reason = "no messageId"
	}
	if reason == "" && rec.Replay != "" {
		return ReplaySource, data // already archived under its source: kept apart, never read back
	}
	if reason == "" {
		if bytes.ContainsAny(data, "\r\n") {
			var buf bytes.Buffer
			if json.Compact(&buf, data) == nil {
				data = buf.Bytes()
			}
		}
		return rec.SourceID, data
	}
	line, err := json.Marshal(InvalidLine{Reason: reason, EventID: r.EventID, Data: data})
	if err != nil {
		line = []byte(fmt.Sprintf(`{"reason":%q}`, reason))
	}
	return InvalidSource, line
}

// validSourceID accepts a source id that is one safe path segment of a key.
func validSourceID(s string) bool {
	if s == "" || len(s) > 128 || s == InvalidSource || s == ReplaySource {
		return false
	}
	for _, c := range s {
		ok := c == '_' || c == '-' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		if !ok {
			return false
		}
	}
	return true
}

// shardOf is the shard id of a record (EventID is "shardId:sequenceNumber"); "shard" when the
// event source gave none.
func shardOf(r events.KinesisEventRecord) string {
	id, _, ok := strings.Cut(r.EventID, ":")
	if !ok || id == "" || !validSourceID(id) {
		return "shard"
	}
	return id
}
