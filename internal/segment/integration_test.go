//go:build integration

package segment

import (
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/deadletter"
	"github.com/serverless-cdp/cdp/internal/emulator/testenv"
	"github.com/serverless-cdp/cdp/internal/stream"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// newBackend runs the handler and service tests on DynamoDB Local and kinesis-mock.
func newBackend(t *testing.T) backend {
	t.Helper()
	c := testenv.Clients(t)
	table := testenv.Table(t, c.DynamoDB)
	name := testenv.Stream(t, c.Kinesis, "activations", 1)
	return backend{st: NewStore(c.DynamoDB, table), pub: stream.NewPublisher(c.Kinesis, name),
		dl: deadletter.NewStore(c.DynamoDB, table),
		read: func(t *testing.T, want int, wait time.Duration) [][]byte {
			var out [][]byte
			for _, r := range testenv.ReadStream(t, c.Kinesis, name, want, wait) {
				out = append(out, r.Data)
			}
			return out
		}}
}

// TestDynamoStoreConformance runs the stores' conformance suite on DynamoDB Local.
func TestDynamoStoreConformance(t *testing.T) {
	c := testenv.Clients(t)
	runStoreConformance(t, func(t *testing.T) Stores { return NewStore(c.DynamoDB, testenv.Table(t, c.DynamoDB)) })
}
