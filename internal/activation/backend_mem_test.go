//go:build !integration

package activation

import (
	"testing"

	"github.com/serverless-cdp/cdp/internal/destination"
)

// newBackend: without the integration tag the scenario tests run on the in-memory stores.
func newBackend(*testing.T) (Store, destination.Store) {
	return NewMemStore(), destination.NewMemStore()
}
