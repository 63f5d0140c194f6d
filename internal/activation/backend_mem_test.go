//go:build !integration

package activation

import (
	"testing"

	"github.com/serverless-cdp/cdp/internal/destination"
)

// newBackend: without the integration tag the scenario tests run on the in-memory stores.
func newBackend(*testing.T) (Store, BadRecords, destination.Store) {
	return NewMemStore(), NewMemBadRecords(), destination.NewMemStore()
}
