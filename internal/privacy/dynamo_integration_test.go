//go:build integration

package privacy

import (
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/emulator/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestDynamoStoreConformance(t *testing.T) {
	runStoreConformance(t, func(t *testing.T, ttl time.Duration, now func() time.Time) RequestStore {
		c := testenv.Clients(t)
		var opts []DynamoOption
		if ttl > 0 {
			opts = append(opts, WithExportTTL(ttl))
		}
		if now != nil {
			opts = append(opts, WithClock(now))
		}
		return NewDynamoStore(c.DynamoDB, testenv.Table(t, c.DynamoDB), opts...)
	})
}
