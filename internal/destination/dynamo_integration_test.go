//go:build integration

package destination

import (
	"testing"

	"github.com/serverless-cdp/cdp/internal/emulator/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestDynamoStoreConformance(t *testing.T) {
	runStoreConformance(t, func(t *testing.T) Store {
		c := testenv.Clients(t)
		return NewDynamoStore(c.DynamoDB, testenv.Table(t, c.DynamoDB))
	})
}

func TestServiceAgainstDynamoDB(t *testing.T) {
	runServiceScenario(t, func(t *testing.T, opts ...Option) *Service {
		c := testenv.Clients(t)
		return NewService(c.DynamoDB, testenv.Table(t, c.DynamoDB), opts...)
	})
}
