package replay

import (
	"context"
	"errors"

	"github.com/serverless-cdp/cdp/internal/store/docs"
)

// ErrNotFound is returned for an unknown job.
var ErrNotFound = errors.New("replay: job not found")

// ErrNoArchive: the deployment has no archive configured (CDP_ARCHIVE_BUCKET or
// CDP_ARCHIVE_DIR), so there is nothing to replay.
var ErrNoArchive = errors.New("replay: no archive is configured (CDP_ARCHIVE_BUCKET or CDP_ARCHIVE_DIR)")

// ErrConflict is returned when creating a job whose id exists, or when Update gave up under
// contention.
var ErrConflict = errors.New("replay: conflict")

// JobStore keeps replay jobs. DynamoStore is the adapter on the shared table; MemStore the
// in-memory fake; one conformance suite runs on both.
type JobStore interface {
	// Create stores a new job (Version 1); ErrConflict if its id exists.
	Create(ctx context.Context, j Job) error
	// Get returns a job or ErrNotFound.
	Get(ctx context.Context, id string) (Job, error)
	// List returns up to limit jobs, newest first, and a cursor for the next page ("" at the
	// end).
	List(ctx context.Context, limit int, next string) ([]Job, string, error)
	// Update applies fn to the current job and writes it back conditionally on its version
	// (Version+1), re-reading and re-applying fn when another writer got there first. An
	// error from fn aborts and is returned as is; ErrNotFound for an unknown id.
	Update(ctx context.Context, id string, fn func(*Job) error) error
	// Pending returns the jobs neither completed nor failed, oldest first.
	Pending(ctx context.Context) ([]Job, error)
}

// MemStore is the in-memory JobStore (docs.Mem).
type MemStore struct{ *docs.Mem[Job] }

var _ JobStore = (*MemStore)(nil)

// NewMemStore returns an empty store.
func NewMemStore() *MemStore { return &MemStore{docs.NewMem(jobKind)} }
