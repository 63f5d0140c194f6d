//go:build !integration

package segment

import (
	"testing"
	"time"
)

// newBackend runs the handler and service tests on the in-memory stores; under the integration
// tag they run on DynamoDB Local and kinesis-mock instead (integration_test.go).
func newBackend(t *testing.T) backend {
	t.Helper()
	pub := &MemPublisher{}
	return backend{st: NewMemStore(), pub: pub, dl: &MemDeadLetters{},
		read: func(_ *testing.T, _ int, _ time.Duration) [][]byte {
			var out [][]byte
			for _, r := range pub.Records() {
				out = append(out, r.Data)
			}
			return out
		}}
}
