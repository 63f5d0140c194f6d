//go:build integration

package replay

import (
	"testing"

	"github.com/serverless-cdp/cdp/internal/emulator/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestDynamoStoreConformance(t *testing.T) {
	runStoreConformance(t, func(t *testing.T) JobStore {
		c := testenv.Clients(t)
		return NewDynamoStore(c.DynamoDB, testenv.Table(t, c.DynamoDB))
	})
}
