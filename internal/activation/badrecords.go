package activation

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/serverless-cdp/cdp/internal/deadletter"
)

// Stage is this stage's name in the shared dead-letter store (internal/deadletter).
const Stage = "activation"

// Kinds of what the stage keeps in the shared dead-letter store.
const (
	KindRecord  = "record"  // an activations stream record that can never be delivered (its raw data)
	KindMessage = "message" // one destination's message whose delivery state the table refuses
)

// SharedDeadLetters is the part of the shared dead-letter store (*deadletter.Store) the stage
// uses: it keeps payloads of any size (gzip, then chunks).
type SharedDeadLetters interface {
	Put(ctx context.Context, e deadletter.Entry) (deadletter.Entry, error)
	Get(ctx context.Context, stage, id string) (deadletter.Entry, error)
	List(ctx context.Context, stage string, limit int, next string) ([]deadletter.Entry, string, error)
}

// sharedBadRecords keeps bad records in the shared dead-letter store under Stage, and shows them
// as the dead letters of UndecodableDestination (record id: the entry's id).
type sharedBadRecords struct{ dl SharedDeadLetters }

// NewSharedBadRecords returns the BadRecords adapter over the shared dead-letter store.
func NewSharedBadRecords(dl SharedDeadLetters) BadRecords { return sharedBadRecords{dl: dl} }

func (s sharedBadRecords) Keep(ctx context.Context, kind, key string, data []byte, reason string, _ time.Time) error {
	_, err := s.dl.Put(ctx, deadletter.Entry{Stage: Stage, Kind: kind, Reason: "undeliverable", Error: reason,
		Payload: data, Meta: map[string]string{"key": key}})
	if err != nil {
		return fmt.Errorf("keep undeliverable %s %s: %w", kind, key, err)
	}
	return nil
}

func (s sharedBadRecords) List(ctx context.Context, limit int, next string) ([]DeadLetter, string, error) {
	es, n, err := s.dl.List(ctx, Stage, limit, next)
	if err != nil {
		return nil, "", err
	}
	out := make([]DeadLetter, 0, len(es))
	for _, e := range es {
		out = append(out, badRecord(e.ID, e.Kind, e.Error, e.UpdatedAt, e.Payload))
	}
	return out, n, nil
}

func (s sharedBadRecords) Get(ctx context.Context, id string) (DeadLetter, error) {
	e, err := s.dl.Get(ctx, Stage, id)
	if errors.Is(err, deadletter.ErrNotFound) {
		return DeadLetter{}, ErrNotFound
	}
	if err != nil {
		return DeadLetter{}, err
	}
	return badRecord(e.ID, e.Kind, e.Error, e.UpdatedAt, e.Payload), nil
}

// badRecord shows a kept record as a dead letter: the payload is a JSON string, base64 of the
// data as received.
func badRecord(id, kind, reason string, at time.Time, data []byte) DeadLetter {
	payload, _ := json.Marshal(base64.StdEncoding.EncodeToString(data))
	return DeadLetter{DestinationID: UndecodableDestination, RecordID: id, Kind: kind, LastError: reason, DeadAt: at.UTC(), Payload: payload}
}

// memBadRecords is the in-memory BadRecords, with the shared store's semantics: an entry's id
// is derived from the stage, kind and payload, so the same data kept twice is one entry (with
// the latest reason).
type memBadRecords struct {
	mu sync.Mutex
	es map[string]DeadLetter
}

// NewMemBadRecords returns an empty in-memory BadRecords.
func NewMemBadRecords() BadRecords { return &memBadRecords{es: map[string]DeadLetter{}} }

func (m *memBadRecords) Keep(_ context.Context, kind, _ string, data []byte, reason string, at time.Time) error {
	id := deadletter.EntryID(Stage, kind, data)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.es[id] = badRecord(id, kind, reason, at, data)
	return nil
}

func (m *memBadRecords) List(_ context.Context, limit int, next string) ([]DeadLetter, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := make([]string, 0, len(m.es))
	for id := range m.es {
		if id > next {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	out := make([]DeadLetter, 0, min(limit, len(ids)))
	for _, id := range ids[:min(limit, len(ids))] {
		out = append(out, m.es[id])
	}
	if len(ids) > limit {
		return out, ids[limit-1], nil
	}
	return out, "", nil
}

func (m *memBadRecords) Get(_ context.Context, id string) (DeadLetter, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	dl, ok := m.es[id]
	if !ok {
		return DeadLetter{}, ErrNotFound
	}
	return dl, nil
}

// Replay runs a kept stream record (KindRecord) through the handler again, for the shared
// dead-letter service (register the Deliverer as the Replayer of Stage): an error when it is
// still undeliverable or its outcome could not be recorded, so the entry stays. A message the
// table refused (KindMessage) cannot be replayed.
func (d *Deliverer) Replay(ctx context.Context, e deadletter.Entry) error {
	if e.Kind != KindRecord {
		return fmt.Errorf("activation: a kept %s cannot be replayed", e.Kind)
	}
	dests, err := d.dests.List(ctx)
	if err != nil {
		return fmt.Errorf("load destinations: %w", err)
	}
	rec, err := decodeRecord(e.Payload)
	if err == nil {
		_, err = d.jobsFor(rec, dests)
	}
	if err != nil {
		return fmt.Errorf("activation: still undeliverable: %w", err)
	}
	ev := events.KinesisEvent{Records: []events.KinesisEventRecord{{EventSource: "aws:kinesis",
		Kinesis: events.KinesisRecord{Data: e.Payload, SequenceNumber: "replay:" + e.ID}}}}
	resp, err := d.HandleKinesis(ctx, ev)
	if err != nil {
		return err
	}
	if len(resp.BatchItemFailures) > 0 {
		return errors.New("activation: the replayed record's deliveries could not be recorded; replay again")
	}
	return nil
}
