//go:build integration

package activation

import (
	"testing"

	"github.com/serverless-cdp/cdp/internal/deadletter"
	"github.com/serverless-cdp/cdp/internal/destination"
	"github.com/serverless-cdp/cdp/internal/emulator/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// newBackend: with the integration tag the scenario tests run on DynamoDB Local.
func newBackend(t *testing.T) (Store, BadRecords, destination.Store) {
	c := testenv.Clients(t)
	table := testenv.Table(t, c.DynamoDB)
	return NewDynamoStore(c.DynamoDB, table), NewSharedBadRecords(deadletter.NewStore(c.DynamoDB, table)),
		destination.NewDynamoStore(c.DynamoDB, table)
}

func TestDynamoStoreConformance(t *testing.T) {
	runStoreConformance(t, func(t *testing.T) Store {
		c := testenv.Clients(t)
		return NewDynamoStore(c.DynamoDB, testenv.Table(t, c.DynamoDB))
	})
}

func TestSharedBadRecordsConformance(t *testing.T) {
	runBadRecordsConformance(t, func(t *testing.T) BadRecords {
		c := testenv.Clients(t)
		return NewSharedBadRecords(deadletter.NewStore(c.DynamoDB, testenv.Table(t, c.DynamoDB)))
	})
}
