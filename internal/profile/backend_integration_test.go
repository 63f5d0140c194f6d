//go:build integration

package profile_test

import (
	"testing"

	"github.com/serverless-cdp/cdp/internal/emulator/testenv"
	"github.com/serverless-cdp/cdp/internal/identity"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func integrationBackends() []backend {
	return []backend{{name: "dynamodb", open: func(t testing.TB) store {
		c := testenv.Clients(t)
		return identity.NewStore(c.DynamoDB, testenv.Table(t, c.DynamoDB))
	}}}
}
