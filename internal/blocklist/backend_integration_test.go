//go:build integration

package blocklist

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/serverless-cdp/cdp/internal/emulator/testenv"
	"github.com/serverless-cdp/cdp/internal/store"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func integrationBackends() []backend {
	return []backend{{name: "dynamodb", open: func(t testing.TB, opt Options) Store {
		c := testenv.Clients(t)
		return NewStore(c.DynamoDB, testenv.Table(t, c.DynamoDB), NewHasher(testKey), opt)
	}}}
}

// TestDynamoStoresOnlyHashesAndMasks scans the table: no identifier or profile id is stored.
func TestDynamoStoresOnlyHashesAndMasks(t *testing.T) {
	ctx := context.Background()
	c := testenv.Clients(t)
	table := testenv.Table(t, c.DynamoDB)
	s := NewStore(c.DynamoDB, table, NewHasher(testKey), Options{})
	ids := []string{"email:ann@example.com", "user_id:secret-user"}
	must(t, s.Suppress(ctx, "req1", ids, []string{Mask(ids[0]), Mask(ids[1])}))
	must(t, s.BlockProfiles(ctx, "req1", []string{"use_secretprofile"}, time.Hour))
	out, err := c.DynamoDB.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(table)})
	must(t, err)
	if len(out.Items) != 4 { // two identifiers, one profile, the version
		t.Fatalf("%d items", len(out.Items))
	}
	for _, it := range out.Items {
		for name := range it {
			sv := store.GetS(it, name)
			for _, secret := range []string{"ann@example.com", "secret-user", "use_secretprofile"} {
				if strings.Contains(sv, secret) {
					t.Errorf("attribute %s holds %q", name, secret)
				}
			}
		}
	}
}
