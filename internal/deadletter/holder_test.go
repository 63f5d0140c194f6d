//go:build integration

package deadletter_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/serverless-cdp/cdp/internal/deadletter"
	"github.com/serverless-cdp/cdp/internal/emulator/testenv"
	"github.com/serverless-cdp/cdp/internal/privacy"
)

// TestHolderExportsAndErasesThePersonsEntries: the holder finds, in every stage's partition
// (the known ones and one registered by its first Put), the entries whose payload or meta names
// one of the person's profiles or identifier values (emails case-insensitively; a chunked
// gzip payload; a payload that is not JSON), exports them whole, erases them with their chunks,
// and leaves every other entry alone.
func TestHolderExportsAndErasesThePersonsEntries(t *testing.T) {
	c := testenv.Clients(t)
	table := testenv.Table(t, c.DynamoDB)
	s := deadletter.NewStore(c.DynamoDB, table)
	ctx := context.Background()
	noise := make([]byte, 1<<20)
	_, _ = rand.Read(noise)
	big, _ := json.Marshal(map[string]any{"id": "aud-prof-0001-x-1", "profileId": "prof-0001", "blob": base64.StdEncoding.EncodeToString(noise)})
	mine := []deadletter.Entry{
		{Stage: "identity", Kind: "event", Reason: "decode", Payload: []byte(`{"sourceId":"src","message":{"type":"identify","traits":{"email":"Ann@Example.COM"}}}`)},
		{Stage: "segments", Kind: "change", Reason: "unprocessable", Payload: []byte(`{"profileId":"prof-0001","events":[]}`)},
		{Stage: "activation", Kind: "record", Reason: "undeliverable", Payload: big},
		{Stage: "exports", Kind: "x", Reason: "r", Payload: []byte(`{"nested":"{\"userId\":\"user-42\"}"}`)},
		{Stage: "identity", Kind: "event", Reason: "decode", Payload: []byte(`{"truncated": "ann@example.com", "mess`)},
		{Stage: "segments", Kind: "change", Reason: "decode", Payload: []byte(`{}`), Meta: map[string]string{"partitionKey": "prof-0002"}},
	}
	others := []deadletter.Entry{
		{Stage: "identity", Kind: "event", Reason: "decode", Payload: []byte(`{"message":{"userId":"user-421","traits":{"email":"bob@example.com"}}}`)},
		{Stage: "segments", Kind: "change", Reason: "unprocessable", Payload: []byte(`{"profileId":"prof-0001x"}`)},
		{Stage: "exports", Kind: "x", Reason: "r", Payload: []byte("not JSON; u7 is too short to be matched in raw bytes")},
	}
	for _, e := range append(append([]deadletter.Entry{}, mine...), others...) {
		if _, err := s.Put(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if n := countChunks(t, c.DynamoDB, table); n == 0 {
		t.Fatal("the large payload was not chunked: the test does not cover chunks")
	}
	h := deadletter.NewHolder(s)
	p := privacy.Person{Profiles: []string{"prof-0001", "prof-0002"}, Identifiers: []string{"email:ann@example.com", "user_id:user-42", "anonymous_id:u7"}}
	var got []deadletter.Entry
	err := h.Export(ctx, p, func(kind string, item any) error {
		if kind != deadletter.KindEntry {
			t.Fatalf("kind %q", kind)
		}
		got = append(got, item.(deadletter.Entry))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(mine) {
		var ids []string
		for _, e := range got {
			ids = append(ids, e.Stage+"/"+e.Kind+"/"+e.Reason)
		}
		t.Fatalf("exported %d entries, want %d: %v", len(got), len(mine), ids)
	}
	for _, e := range got {
		if e.Stage == "activation" && string(e.Payload) != string(big) {
			t.Fatalf("chunked payload exported as %d bytes, want %d", len(e.Payload), len(big))
		}
	}
	n, err := h.Erase(ctx, p)
	if err != nil || n[deadletter.KindEntry] != len(mine) || len(n) != 1 {
		t.Fatalf("erased %v %v, exported %d", n, err, len(got))
	}
	if n, err := h.Erase(ctx, p); err != nil || n[deadletter.KindEntry] != 0 {
		t.Fatalf("second erase: %v %v", n, err)
	}
	if c := countChunks(t, c.DynamoDB, table); c != 0 {
		t.Fatalf("%d payload chunks left", c)
	}
	left := 0
	for _, stage := range []string{"identity", "segments", "activation", "exports"} {
		es, _, err := s.List(ctx, stage, 100, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if strings.Contains(strings.ToLower(string(e.Payload)), "ann@example.com") || strings.Contains(string(e.Payload), `"prof-0001"`) {
				t.Fatalf("left: %s/%s", e.Stage, e.ID)
			}
		}
		left += len(es)
	}
	if left != len(others) {
		t.Fatalf("%d entries left, want the %d of other people", left, len(others))
	}
}

func countChunks(t *testing.T, db *dynamodb.Client, table string) int {
	t.Helper()
	n := 0
	pages := dynamodb.NewScanPaginator(db, &dynamodb.ScanInput{TableName: aws.String(table), ProjectionExpression: aws.String("sk")})
	for pages.HasMorePages() {
		out, err := pages.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range out.Items {
			if sk, ok := it["sk"].(*dtypes.AttributeValueMemberS); ok && strings.HasPrefix(sk.Value, "CHUNK#") {
				n++
			}
		}
	}
	return n
}
