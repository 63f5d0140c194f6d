package privacy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/serverless-cdp/cdp/internal/blocklist"
)

// HolderName is the name of the privacy requests' own holder in request results.
const HolderName = "privacy_requests"

// Kinds of the privacy requests holder.
const (
	KindRequests      = "requests"       // earlier requests about the person still holding their identifiers
	KindExportResults = "export_results" // export results about the person
)

// RequestsHolder is the Holder of the privacy requests themselves: earlier requests about a
// person (found by keyed hash) that still hold cleartext identifiers, and export results about
// them. The request being run (RequestID of the context) is left alone: it is scrubbed when it
// completes.
type RequestsHolder struct {
	store  RequestStore
	hasher blocklist.Hasher
}

// NewRequestsHolder returns the holder; the composition root puts it in the runner's list.
func NewRequestsHolder(s RequestStore, h blocklist.Hasher) *RequestsHolder {
	return &RequestsHolder{store: s, hasher: h}
}

// Name implements Holder.
func (h *RequestsHolder) Name() string { return HolderName }

// RequestItem is how an earlier request appears in an export.
type RequestItem struct {
	ID        string    `json:"id"`
	Type      string    `json:"type"`
	Status    string    `json:"status"`
	Labels    []string  `json:"labels"`
	CreatedAt time.Time `json:"createdAt"`
}

// ExportItem is how an export result appears in an export.
type ExportItem struct {
	RequestID string    `json:"requestId"`
	CreatedAt time.Time `json:"createdAt"`
	Bytes     int       `json:"bytes"`
}

// about returns the other requests about the person.
func (h *RequestsHolder) about(ctx context.Context, p Person) ([]Request, error) {
	hashes := make([]string, 0, len(p.Identifiers))
	for _, id := range p.Identifiers {
		hashes = append(hashes, IdentifierHash(h.hasher, id))
	}
	if len(hashes) == 0 {
		return nil, nil
	}
	all, err := h.store.ListAbout(ctx, hashes)
	if err != nil {
		return nil, err
	}
	self := RequestID(ctx)
	out := all[:0]
	for _, r := range all {
		if r.ID != self {
			out = append(out, r)
		}
	}
	return out, nil
}

func readable(r Request) bool { return len(r.Identifiers) > 0 || r.Person != nil }

// Export implements Holder.
func (h *RequestsHolder) Export(ctx context.Context, p Person, emit func(kind string, item any) error) error {
	reqs, err := h.about(ctx, p)
	if err != nil {
		return fmt.Errorf("privacy requests export: %w", err)
	}
	for _, r := range reqs {
		if readable(r) {
			if err := emit(KindRequests, RequestItem{ID: r.ID, Type: r.Type, Status: r.Status, Labels: r.Labels, CreatedAt: r.CreatedAt}); err != nil {
				return err
			}
		}
		if r.Type != TypeExport {
			continue
		}
		doc, err := h.store.GetExport(ctx, r.ID)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("privacy requests export: %w", err)
		}
		if err := emit(KindExportResults, ExportItem{RequestID: r.ID, CreatedAt: r.CreatedAt, Bytes: len(doc)}); err != nil {
			return err
		}
	}
	return nil
}

// Erase implements Holder: it deletes the export results about the person and removes the
// cleartext identifiers of earlier requests about them; one not finished then fails ("erased
// by a later request"), since it no longer knows whom it is about.
func (h *RequestsHolder) Erase(ctx context.Context, p Person) (map[string]int, error) {
	reqs, err := h.about(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("privacy requests erase: %w", err)
	}
	counts := map[string]int{}
	by := RequestID(ctx)
	for _, r := range reqs {
		if r.Type == TypeExport {
			existed, err := h.store.DeleteExport(ctx, r.ID)
			if err != nil {
				return counts, fmt.Errorf("privacy requests erase: %w", err)
			}
			if existed {
				counts[KindExportResults]++
			}
		}
		if !readable(r) {
			continue
		}
		err := h.store.Update(ctx, r.ID, func(cur *Request) error {
			if !cur.Terminal() {
				cur.Status, cur.Error, cur.CompletedAt = StatusFailed, "erased by privacy request "+by, time.Now().UTC()
			}
			cur.scrub()
			return nil
		})
		if err != nil {
			return counts, fmt.Errorf("privacy requests erase: %w", err)
		}
		counts[KindRequests]++
	}
	return counts, nil
}
