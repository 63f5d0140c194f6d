package replay

import (
	"context"

	"github.com/serverless-cdp/cdp/internal/destination"
	"github.com/serverless-cdp/cdp/internal/stream"
)

// Publisher writes records to a stream (stream.Publisher): the `events` stream for the
// pipeline target, the `activations` stream for the destination target.
type Publisher interface {
	Put(ctx context.Context, recs []stream.Record) error
}

// Blocklist is the privacy block list (blocklist.Checker). An error means the list could not
// be read: the job's step fails and is retried, never treats the record as allowed.
type Blocklist interface {
	// Suppressed reports whether any of the identifiers ("type:value") is suppressed.
	Suppressed(ctx context.Context, identifiers []string) (bool, error)
	// Erased reports whether a privacy request erased the profile.
	Erased(ctx context.Context, profileID string) (bool, error)
}

// Profiles finds, read-only, the profile that holds identifiers (the identity stage's lookup).
type Profiles interface {
	// ProfileOf returns the profile holding any of the identifiers ("type:value"); ok=false
	// when none does.
	ProfileOf(ctx context.Context, identifiers []string) (profileID string, ok bool, err error)
}

// Destinations reads destinations (destination.Service): the destination target must exist,
// and only events it subscribes to are forwarded to it.
type Destinations interface {
	Get(ctx context.Context, id string) (destination.Destination, error)
}
