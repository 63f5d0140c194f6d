package activation

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// The ports the Deliverer depends on. The DynamoDB adapter (NewDynamoStore) implements Store;
// the in-memory one (NewMemStore) implements it too, and one conformance suite checks both.
// BadRecords is the shared dead-letter store (NewSharedBadRecords; NewMemBadRecords in tests).
// Destinations and Sender (deliverer.go) are the other two ports.

// DeliveryLog holds one delivery per (record, destination): the dedupe of at-least-once input,
// the lease that makes one invocation the sender, and the log operators read.
type DeliveryLog interface {
	// Create adds d (Status inflight, Version 1) unless a delivery of the same record to the
	// same destination exists; created=false then (the record was seen before). A delivery
	// created with StatusFilteredConsent is final: listed in the log at once, expiring at
	// d.ExpiresAt. A key or item over the table's limits is ErrRefused.
	Create(ctx context.Context, d Delivery) (created bool, err error)
	// Delivery returns one delivery; found=false when there is none.
	Delivery(ctx context.Context, destID, recordID string) (d Delivery, found bool, err error)
	// Lease marks a delivery inflight until `until`, conditional on its version (which it
	// increments); ok=false when another writer changed it first.
	Lease(ctx context.Context, destID, recordID string, version int64, until, now time.Time) (ok bool, err error)
	// Finish records an outcome (see Transition) atomically with the queue entry the delivery
	// leaves and the one it gets or its dead letter. ErrLeaseLost when the version moved on;
	// ErrGone (and nothing written) when the delivery no longer exists (it was erased).
	Finish(ctx context.Context, t Transition) error
	// Deliveries lists a destination's recorded deliveries, most recently updated first; next
	// pages on ("" at the end). A token not issued by the store is ErrBadPage.
	Deliveries(ctx context.Context, destID string, limit int, next string) ([]Delivery, string, error)
}

// Queue is the retry schedule: entries due at a time, read without scanning the table.
type Queue interface {
	// Due returns up to limit entries due at now, earliest first.
	Due(ctx context.Context, now time.Time, limit int) ([]QueueEntry, error)
	// Dequeue removes an entry (no error when it is gone already).
	Dequeue(ctx context.Context, e QueueEntry) error
}

// DeadLetterStore holds each destination's dead letters (written by Finish) and moves them back
// to the queue.
type DeadLetterStore interface {
	DeadLetters(ctx context.Context, destID string, limit int, next string) ([]DeadLetter, string, error)
	// DeadLetter returns one dead letter, or ErrNotFound.
	DeadLetter(ctx context.Context, destID, recordID string) (DeadLetter, error)
	// Redrive removes d's dead letter and queues d due at now with a fresh retry cycle, in one
	// atomic step conditional on d.Version and d being dead; ErrNotDead otherwise.
	Redrive(ctx context.Context, d Delivery, now time.Time) error
}

// BadRecords keeps what can never be delivered (an undecodable stream record, a message whose
// delivery state the table refuses), listed as the dead letters of UndecodableDestination. The
// production adapter is the shared dead-letter store (NewSharedBadRecords).
type BadRecords interface {
	// Keep stores data of any size (kind KindRecord or KindMessage; key says where it came
	// from) with the reason. The same kind and data kept again is one entry.
	Keep(ctx context.Context, kind, key string, data []byte, reason string, at time.Time) error
	List(ctx context.Context, limit int, next string) ([]DeadLetter, string, error)
	// Get returns one by its RecordID, or ErrNotFound.
	Get(ctx context.Context, id string) (DeadLetter, error)
}

// Counters are each destination's delivery counters.
type Counters interface {
	// Count adds one to a counter: "delivered", "retried", "deadLettered", "redriven",
	// "filteredConsent" or "droppedErased".
	Count(ctx context.Context, destID, counter string) error
	Stats(ctx context.Context, destID string) (Stats, error)
}

// PersonalData finds and erases what the deliveries keep about a person (the deliveries
// Holder, holder.go). Deliveries are found by their record id's prefix (one of
// activations.ProfilePrefixes), with a key query, never a scan.
type PersonalData interface {
	// ProfileDeliveries returns every delivery to destID whose record id starts with prefix,
	// payloads included.
	ProfileDeliveries(ctx context.Context, destID, prefix string) ([]Delivery, error)
	// EraseDelivery deletes d's queue entry (d.QueueRef), its dead letter and then d itself,
	// and reports which of them existed. Erasing what is gone is no error.
	EraseDelivery(ctx context.Context, d Delivery) (Erased, error)
}

// Erased says what EraseDelivery deleted.
type Erased struct{ Delivery, QueueEntry, DeadLetter bool }

// Store is the ports one adapter over the table implements together: Finish and Redrive move a
// delivery between the log, the queue and the dead letters atomically, so one adapter holds all
// three (and the counters next to them).
type Store interface {
	DeliveryLog
	Queue
	DeadLetterStore
	Counters
	PersonalData
}

// QueueEntry is one retry due at a time.
type QueueEntry struct {
	DestID, RecordID string
	Due              time.Time
	Ref              string // the adapter's id of the entry; a delivery's QueueRef names it
}

// Transition is one recorded outcome of a leased delivery: its new state, written only if its
// version is still Version (then Version+1), together with leaving the queue entry FromQueue
// (if any) and, by Status: delivered (the dedupe marker expires at ExpiresAt; body and queue
// reference dropped), retrying (a queue entry due at NextAt; Body kept) or dead (a dead letter
// with Body; Body kept).
type Transition struct {
	DestID, RecordID, WebhookID, Kind string
	Version                           int64
	FromQueue                         string
	Status                            string
	Attempts, Retries                 int
	LastStatus                        int
	LastError                         string
	Latency                           time.Duration
	At                                time.Time
	Body                              json.RawMessage
	NextAt                            time.Time // retrying
	ExpiresAt                         time.Time // delivered
}

// ErrLeaseLost: another writer changed the delivery since this invocation leased it.
var ErrLeaseLost = errors.New("delivery lease lost")

// ErrGone: the delivery no longer exists (it was erased while an attempt was in flight).
var ErrGone = errors.New("delivery erased")

// ErrRefused: the store will never accept this write (a key or item over the table's limits).
var ErrRefused = errors.New("refused by the store")

// ErrNotDead is returned when redriving something that is not (or no longer) a dead letter.
var ErrNotDead = errors.New("not a dead letter")

// ErrNotFound is returned for an unknown delivery or dead letter.
var ErrNotFound = errors.New("not found")

// ErrBadPage is returned for a paging token that was not issued by this package.
var ErrBadPage = errors.New("invalid paging token")
