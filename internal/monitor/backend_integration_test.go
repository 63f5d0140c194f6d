//go:build integration

package monitor

import (
	"testing"

	"github.com/serverless-cdp/cdp/internal/emulator/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func integrationBackends() []backend {
	return []backend{{name: "dynamodb", open: func(t testing.TB) Store {
		c := testenv.Clients(t)
		return NewStore(c.DynamoDB, testenv.Table(t, c.DynamoDB))
	}}}
}
