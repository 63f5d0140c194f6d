package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/serverless-cdp/cdp/internal/change"
	"github.com/serverless-cdp/cdp/internal/deadletter"
	"github.com/serverless-cdp/cdp/internal/store"
	"github.com/serverless-cdp/cdp/internal/stream"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

// Dead-letter stage and kinds of this stage.
const (
	Stage      = "identity"
	KindEvent  = "event"  // payload: a tracking.Record from the events stream
	KindChange = "change" // payload: a change.Record that could not be published
)

// maxChangeBytes keeps a change record within a Kinesis record and a dead-letter entry.
const maxChangeBytes = 300 << 10

// Publisher writes records to the changes stream (stream.Publisher).
type Publisher interface {
	Put(ctx context.Context, recs []stream.Record) error
}

// DeadLetters stores records that cannot be processed (deadletter.Store).
type DeadLetters interface {
	Put(ctx context.Context, e deadletter.Entry) (deadletter.Entry, error)
}

// HandlerConfig wires a Handler.
type HandlerConfig struct {
	Processor   *Processor
	Store       *Store // attempt counters
	Changes     Publisher
	DeadLetters DeadLetters
	// MaxAttempts is how many invocations may fail on one record before it is dead-lettered
	// and acknowledged (default 5).
	MaxAttempts int
	Logger      *slog.Logger
}

// Handler is the Kinesis handler of the events stream.
type Handler struct {
	cfg HandlerConfig
	log *slog.Logger
}

// NewHandler returns a handler.
func NewHandler(cfg HandlerConfig) *Handler {
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 5
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Handler{cfg: cfg, log: cfg.Logger}
}

// Handle processes a batch. Records that failed and may succeed later are returned in
// BatchItemFailures; a record that cannot be decoded or resolved, or that failed MaxAttempts
// times, goes to the dead letters and is acknowledged so the shard moves on. The error is set
// only if change records could neither be published nor dead-lettered.
func (h *Handler) Handle(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
	var resp events.KinesisEventResponse
	fail := func(r events.KinesisEventRecord) {
		resp.BatchItemFailures = append(resp.BatchItemFailures, events.KinesisBatchItemFailure{ItemIdentifier: r.Kinesis.SequenceNumber})
	}
	recs := make([]tracking.Record, 0, len(ev.Records))
	src := make([]events.KinesisEventRecord, 0, len(ev.Records))
	for _, r := range ev.Records {
		var tr tracking.Record
		err := json.Unmarshal(r.Kinesis.Data, &tr)
		if err == nil && tr.Message.MessageID == "" {
			err = errors.New("message has no messageId")
		}
		if err != nil {
			if derr := h.deadLetter(ctx, r, "decode", err); derr != nil {
				fail(r)
			}
			continue
		}
		recs = append(recs, tr)
		src = append(src, r)
	}
	results, changes, _ := h.cfg.Processor.Process(ctx, recs)
	counts := map[Outcome]int{}
	for i, res := range results {
		counts[res.Outcome]++
		switch res.Outcome {
		case Unresolvable:
			if err := h.deadLetter(ctx, src[i], "no_identifiers", res.Err); err != nil {
				fail(src[i])
			}
		case Failed:
			n, err := h.cfg.Store.countAttempt(ctx, recs[i].Message.MessageID)
			switch {
			case err != nil:
				h.log.Warn("count attempt", "err", err)
				fail(src[i])
			case n >= h.cfg.MaxAttempts:
				if err := h.deadLetter(ctx, src[i], "retries_exhausted", fmt.Errorf("attempt %d: %w", n, res.Err)); err != nil {
					fail(src[i])
				}
			default:
				h.log.Warn("record failed; will be retried", "messageId", recs[i].Message.MessageID, "attempt", n, "err", res.Err)
				fail(src[i])
			}
		}
	}
	err := h.publish(ctx, changes)
	h.log.Info("identity batch", "records", len(ev.Records), "processed", counts[Processed], "duplicates", counts[Duplicate],
		"unresolvable", counts[Unresolvable], "failed", counts[Failed], "changes", len(changes), "retry", len(resp.BatchItemFailures))
	return resp, err
}

// publish writes change records; what cannot be published is dead-lettered for replay.
func (h *Handler) publish(ctx context.Context, changes []change.Record) error {
	if len(changes) == 0 {
		return nil
	}
	var out []stream.Record
	for _, c := range changes {
		parts, err := SplitChange(c, maxChangeBytes)
		if err != nil {
			return err
		}
		for _, p := range parts {
			out = append(out, stream.Record{PartitionKey: c.ProfileID, Data: p})
		}
	}
	perr := h.cfg.Changes.Put(ctx, out)
	if perr == nil {
		return nil
	}
	h.log.Error("publish changes failed; dead-lettering them", "err", perr, "records", len(out))
	var errs []error
	for _, r := range out {
		_, err := h.cfg.DeadLetters.Put(ctx, deadletter.Entry{
			Stage: Stage, Kind: KindChange, Reason: "publish_failed", Error: perr.Error(), Payload: r.Data,
			Meta: map[string]string{"partitionKey": r.PartitionKey},
		})
		if err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("changes neither published (%v) nor dead-lettered: %w", perr, errors.Join(errs...))
	}
	return nil
}

// SplitChange encodes a change record, split into parts of at most maxBytes (events spread
// over the parts; every part carries the profile state).
func SplitChange(c change.Record, maxBytes int) ([][]byte, error) {
	c.Part, c.Parts = 1, 1
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode change: %w", err)
	}
	if len(b) <= maxBytes || len(c.Events) <= 1 {
		return [][]byte{b}, nil
	}
	base := c
	base.Events = nil
	bb, _ := json.Marshal(base)
	budget := maxBytes - len(bb) - 64
	var groups [][]tracking.Message
	var cur []tracking.Message
	size := 0
	for _, e := range c.Events {
		eb, _ := json.Marshal(e)
		if len(cur) > 0 && size+len(eb) > budget {
			groups = append(groups, cur)
			cur, size = nil, 0
		}
		cur = append(cur, e)
		size += len(eb) + 1
	}
	groups = append(groups, cur)
	out := make([][]byte, 0, len(groups))
	for i, g := range groups {
		p := base
		p.Events, p.Part, p.Parts = g, i+1, len(groups)
		pb, err := json.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("encode change: %w", err)
		}
		out = append(out, pb)
	}
	return out, nil
}

func (h *Handler) deadLetter(ctx context.Context, r events.KinesisEventRecord, reason string, cause error) error {
	msg := ""
	if cause != nil {
		msg = cause.Error()
	}
	e, err := h.cfg.DeadLetters.Put(ctx, deadletter.Entry{
		Stage: Stage, Kind: KindEvent, Reason: reason, Error: msg, Payload: r.Kinesis.Data,
		Meta: map[string]string{"eventId": r.EventID, "partitionKey": r.Kinesis.PartitionKey, "sequenceNumber": r.Kinesis.SequenceNumber},
	})
	if err != nil {
		h.log.Error("dead letter failed; record will be retried", "err", err, "reason", reason)
		return err
	}
	h.log.Warn("record dead-lettered", "id", e.ID, "reason", reason, "err", msg)
	return nil
}

// Replay processes a dead letter of this stage again: an event goes through resolution (a
// duplicate is fine), a change is published. It implements deadletter.Replayer.
func (h *Handler) Replay(ctx context.Context, e deadletter.Entry) error {
	switch e.Kind {
	case KindChange:
		var c change.Record
		if err := json.Unmarshal(e.Payload, &c); err != nil {
			return fmt.Errorf("decode change: %w", err)
		}
		return h.cfg.Changes.Put(ctx, []stream.Record{{PartitionKey: c.ProfileID, Data: e.Payload}})
	case KindEvent:
		var tr tracking.Record
		if err := json.Unmarshal(e.Payload, &tr); err != nil {
			return fmt.Errorf("decode event: %w", err)
		}
		if tr.Message.MessageID == "" {
			return errors.New("message has no messageId")
		}
		res, changes, err := h.cfg.Processor.Process(ctx, []tracking.Record{tr})
		if err != nil {
			return err
		}
		if res[0].Outcome == Failed || res[0].Outcome == Unresolvable {
			return fmt.Errorf("%s: %w", res[0].Outcome, res[0].Err)
		}
		return h.publish(ctx, changes)
	}
	return fmt.Errorf("unknown dead-letter kind %q", e.Kind)
}

// countAttempt increments and returns the failure count of a message (kept a week).
func (s *Store) countAttempt(ctx context.Context, messageID string) (int, error) {
	out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(s.table),
		Key:                      key(prefixAttempt+messageID, skAttempt),
		UpdateExpression:         aws.String("ADD n :one SET #ttl = :ttl"),
		ExpressionAttributeNames: map[string]string{"#ttl": store.TTL},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":one": nv(1), ":ttl": nv(s.now().Add(7 * 24 * time.Hour).Unix()),
		},
		ReturnValues: types.ReturnValueUpdatedNew,
	})
	if err != nil {
		return 0, fmt.Errorf("count attempt: %w", err)
	}
	n, _ := strconv.Atoi(func() string {
		if v, ok := out.Attributes["n"].(*types.AttributeValueMemberN); ok {
			return v.Value
		}
		return "0"
	}())
	return n, nil
}
