package activation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/serverless-cdp/cdp/internal/activations"
	"github.com/serverless-cdp/cdp/internal/privacy"
)

// Kinds of what the deliveries holder keeps about a person.
const (
	KindDeliveries             = "deliveries"
	KindRetryQueue             = "retry_queue"
	KindDestinationDeadLetters = "destination_dead_letters"
)

// DeliveriesHolder is the privacy.Holder of the deliveries: for every destination and every
// profile of the person, the deliveries whose record id starts with one of
// activations.ProfilePrefixes (a key query per destination, profile and prefix — no scan),
// their retry-queue entries and the destination dead letters holding their payloads. The
// deliveries of a deleted destination are not found (they expire on their own; dead letters
// of a deleted destination do not — see the README).
type DeliveriesHolder struct {
	data  PersonalData
	dead  DeadLetterStore
	dests Destinations
}

// NewDeliveriesHolder returns the deliveries holder over a Store (NewDynamoStore, NewMemStore).
func NewDeliveriesHolder(st Store, dests Destinations) *DeliveriesHolder {
	return &DeliveriesHolder{data: st, dead: st, dests: dests}
}

var _ privacy.Holder = (*DeliveriesHolder)(nil)

// Name names the holder in privacy request results.
func (h *DeliveriesHolder) Name() string { return "deliveries" }

// each calls fn with every delivery about the person, destination by destination.
func (h *DeliveriesHolder) each(ctx context.Context, p privacy.Person, fn func(Delivery) error) error {
	dests, err := h.dests.List(ctx)
	if err != nil {
		return fmt.Errorf("deliveries holder: load destinations: %w", err)
	}
	for _, dest := range dests {
		for _, pid := range p.Profiles {
			for _, prefix := range activations.ProfilePrefixes(pid) {
				ds, err := h.data.ProfileDeliveries(ctx, dest.ID, prefix)
				if err != nil {
					return fmt.Errorf("deliveries holder: %w", err)
				}
				for _, d := range ds {
					if err := fn(d); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// exportedDelivery is a delivery as an export shows it: its state and the payload it holds
// while it may be resent (a delivered message's payload is not kept).
type exportedDelivery struct {
	Delivery
	Payload json.RawMessage `json:"payload,omitempty"`
}

// exportedQueueEntry is a retry-queue entry as an export shows it.
type exportedQueueEntry struct {
	DestinationID string    `json:"destinationId"`
	RecordID      string    `json:"recordId"`
	Due           time.Time `json:"due"`
}

// Export emits every delivery about the person with its status, attempts, timestamps and
// payload, its retry-queue entry and its dead letter (with the payload).
func (h *DeliveriesHolder) Export(ctx context.Context, p privacy.Person, emit func(kind string, item any) error) error {
	return h.each(ctx, p, func(d Delivery) error {
		if err := emit(KindDeliveries, exportedDelivery{Delivery: d, Payload: d.Body}); err != nil {
			return err
		}
		if d.QueueRef != "" {
			if err := emit(KindRetryQueue, exportedQueueEntry{DestinationID: d.DestinationID, RecordID: d.RecordID, Due: refDue(d.QueueRef)}); err != nil {
				return err
			}
		}
		if d.Status != StatusDead {
			return nil // a dead letter exists only while its delivery is dead
		}
		dl, err := h.dead.DeadLetter(ctx, d.DestinationID, d.RecordID)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("deliveries holder: %w", err)
		}
		return emit(KindDestinationDeadLetters, dl)
	})
}

// refDue reads the due time a queue reference carries ("<pk> <dueMs>#…").
func refDue(ref string) time.Time {
	_, sk, _ := strings.Cut(ref, " ")
	ms, _ := strconv.ParseInt(strings.SplitN(sk, "#", 2)[0], 10, 64)
	return time.UnixMilli(ms).UTC()
}

// Erase deletes every delivery about the person with its queue entry and dead letter. It is
// idempotent; an outcome written later for an erased delivery fails (ErrGone), so an attempt in
// flight never brings it back.
func (h *DeliveriesHolder) Erase(ctx context.Context, p privacy.Person) (map[string]int, error) {
	counts := map[string]int{}
	err := h.each(ctx, p, func(d Delivery) error {
		e, err := h.data.EraseDelivery(ctx, d)
		if err != nil {
			return fmt.Errorf("deliveries holder: %w", err)
		}
		for kind, gone := range map[string]bool{KindDeliveries: e.Delivery, KindRetryQueue: e.QueueEntry, KindDestinationDeadLetters: e.DeadLetter} {
			if gone {
				counts[kind]++
			}
		}
		return nil
	})
	return counts, err
}
