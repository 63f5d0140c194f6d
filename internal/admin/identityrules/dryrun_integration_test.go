//go:build integration

package identityrules_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/serverless-cdp/cdp/internal/admin"
	"github.com/serverless-cdp/cdp/internal/admin/admintest"
	"github.com/serverless-cdp/cdp/internal/admin/identityrules"
	"github.com/serverless-cdp/cdp/internal/archive"
	"github.com/serverless-cdp/cdp/internal/emulator/testenv"
	"github.com/serverless-cdp/cdp/internal/identity"
	"github.com/serverless-cdp/cdp/internal/idrules"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// scanTable reads every item of the table, as sorted JSON lines.
func scanTable(t *testing.T, db *dynamodb.Client, table string) string {
	t.Helper()
	var lines []string
	p := dynamodb.NewScanPaginator(db, &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range page.Items {
			b, err := json.Marshal(it)
			if err != nil {
				t.Fatal(err)
			}
			lines = append(lines, string(b))
		}
	}
	sort.Strings(lines)
	return fmt.Sprintf("%d items\n%s", len(lines), strings.Join(lines, "\n"))
}

// TestDryRunRouteWritesNothingToTheTable: with the real rules service on DynamoDB Local, a dry
// run reads the rules in force and reports the splits, and the table is item for item the same
// afterwards.
func TestDryRunRouteWritesNothingToTheTable(t *testing.T) {
	clients := testenv.Clients(t)
	table := testenv.Table(t, clients.DynamoDB)
	rules := identity.NewRulesService(clients.DynamoDB, table, 0)
	current := idrules.DefaultRules()
	current.Types = append(current.Types, idrules.TypeRule{Type: "phone", Limit: 2})
	if err := rules.Put(context.Background(), current); err != nil {
		t.Fatal(err)
	}
	st := archive.Folder{Root: t.TempDir()}
	writeHistory(t, st, 5)
	h := admin.New(admintest.OneToken{}, nil, func(r *admin.Router) {
		identityrules.RegisterDryRun(r, rules, identityrules.DryRunConfig{Archive: st})
	})
	before := scanTable(t, clients.DynamoDB, table)
	status, body := dryRun(t, h, `{"rules":{"types":[{"type":"email","priority":2,"limit":1}]},"from":"2026-11-02T00:00:00Z","to":"2026-11-03T00:00:00Z"}`)
	if status != 200 || !strings.Contains(body, `"splits":5,"merges":0`) {
		t.Fatalf("%d %s", status, body)
	}
	if after := scanTable(t, clients.DynamoDB, table); after != before {
		t.Fatalf("the table changed:\nbefore %s\nafter %s", before, after)
	}
}
