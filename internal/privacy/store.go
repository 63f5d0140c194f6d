package privacy

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned for an unknown request or export result.
var ErrNotFound = errors.New("privacy: not found")

// ErrConflict is returned when creating a request whose id exists.
var ErrConflict = errors.New("privacy: conflict")

// DefaultExportTTL is how long an export result is kept.
const DefaultExportTTL = 7 * 24 * time.Hour

// RequestStore keeps privacy requests (the audit log) and export results. The DynamoDB adapter
// is DynamoStore; MemStore is the in-memory fake; one conformance suite runs on both.
type RequestStore interface {
	// Create stores a new request; ErrConflict if its id exists.
	Create(ctx context.Context, r Request) error
	// Get returns a request or ErrNotFound.
	Get(ctx context.Context, id string) (Request, error)
	// List returns up to limit requests, newest first, and a cursor for the next page ("" at
	// the end).
	List(ctx context.Context, limit int, next string) ([]Request, string, error)
	// Update applies fn to the current request and writes it back conditionally on its
	// version (Version+1), re-reading and re-applying fn when another writer got there first.
	// An error from fn aborts and is returned as is; ErrNotFound for an unknown id.
	Update(ctx context.Context, id string, fn func(*Request) error) error
	// ListAbout returns every request whose Hashes hold any of hashes.
	ListAbout(ctx context.Context, hashes []string) ([]Request, error)
	// Pending returns the unsettled requests (Request.Settled: neither completed nor failed,
	// or completed with a follow-up pending), oldest first.
	Pending(ctx context.Context) ([]Request, error)
	// PutExport stores the export result of a request (replacing any), expiring after the
	// store's export TTL.
	PutExport(ctx context.Context, id string, doc []byte) error
	// GetExport returns an export result whole, or ErrNotFound (none, or expired).
	GetExport(ctx context.Context, id string) ([]byte, error)
	// DeleteExport deletes an export result and reports whether there was one.
	DeleteExport(ctx context.Context, id string) (bool, error)
}

func intersects(a []string, set map[string]bool) bool {
	for _, x := range a {
		if set[x] {
			return true
		}
	}
	return false
}
