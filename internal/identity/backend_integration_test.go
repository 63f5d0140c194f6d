//go:build integration

package identity

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/serverless-cdp/cdp/internal/emulator/testenv"
	"github.com/serverless-cdp/cdp/internal/store"
	"github.com/serverless-cdp/cdp/internal/timeline"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// dynamoBackend is the DynamoDB adapter on a private table of DynamoDB Local.
var dynamoBackend = backend{name: "dynamodb", open: func(t testing.TB) (storeUnderTest, backendData) {
	d := openDynamo(t)
	return NewStore(d.db, d.table), d
}}

func integrationBackends() []backend { return []backend{dynamoBackend} }

// dynamoData reaches into a table.
type dynamoData struct {
	db    *dynamodb.Client
	table string
}

func openDynamo(t testing.TB) dynamoData {
	t.Helper()
	c := testenv.Clients(t)
	return dynamoData{db: c.DynamoDB, table: testenv.Table(t, c.DynamoDB)}
}

// newDynamoEnv is an env on DynamoDB Local, for the tests that need DynamoDB itself.
func newDynamoEnv(t testing.TB, rules *Compiled) (*env, dynamoData) {
	t.Helper()
	e := dynamoBackend.newEnv(t, rules)
	return e, e.data.(dynamoData)
}

func (d dynamoData) another() storeUnderTest { return NewStore(d.db, d.table) }

func (d dynamoData) snapshot(t testing.TB) *graphSnapshot {
	t.Helper()
	g := &graphSnapshot{live: map[string]*Profile{}, tombstones: map[string]*Profile{}, index: map[Identifier]string{}, msgs: map[string]string{}, seqs: map[string]int64{}}
	p := dynamodb.NewScanPaginator(d.db, &dynamodb.ScanInput{TableName: aws.String(d.table), ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("scan: %v", err)
		}
		for _, it := range page.Items {
			pk, sk := store.GetS(it, store.PK), store.GetS(it, store.SK)
			switch {
			case sk == skProfile:
				pr, err := decodeProfile(it)
				if err != nil {
					t.Fatal(err)
				}
				if pr.Live() {
					g.live[pr.ID] = pr
				} else {
					g.tombstones[pr.ID] = pr
				}
			case sk == skID:
				id, _ := ParseIdentifier(strings.TrimPrefix(pk, prefixID))
				g.index[id] = store.GetS(it, "profile")
			case sk == skMsg && strings.HasPrefix(pk, prefixMsg):
				g.msgs[strings.TrimPrefix(pk, prefixMsg)] = timeline.ProfileOf(it)
				g.seqs[strings.TrimPrefix(pk, prefixMsg)] = store.GetN(it, "seq")
			}
		}
	}
	return g
}

func (d dynamoData) putLegacyMarker(t testing.TB, messageID, source, profile string, msg tracking.Message) {
	t.Helper()
	b, _ := json.Marshal(msg)
	it := legacyMsgKey(messageID)
	it["source"], it["msg"], it["profile"] = store.S(source), store.S(string(b)), store.S(profile)
	if _, err := d.db.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(d.table), Item: it}); err != nil {
		t.Fatal(err)
	}
}
