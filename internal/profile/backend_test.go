package profile_test

import (
	"testing"

	"github.com/serverless-cdp/cdp/internal/identity"
	"github.com/serverless-cdp/cdp/internal/profile"
)

// store is what the tests need of a backend: the graph the processor writes, the reader the
// Profile API reads.
type store interface {
	identity.GraphStore
	profile.Reader
}

// backend is a storage implementation the handler tests run on: identity's in-memory store
// always, DynamoDB Local with the integration build tag.
type backend struct {
	name string
	open func(t testing.TB) store
}

var memBackend = backend{name: "mem", open: func(testing.TB) store { return identity.NewMemStore(nil) }}

func eachBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	for _, b := range append([]backend{memBackend}, integrationBackends()...) {
		t.Run(b.name, func(t *testing.T) { fn(t, b) })
	}
}
