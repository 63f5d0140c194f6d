//go:build integration

package timeline_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/serverless-cdp/cdp/internal/emulator/testenv"
	"github.com/serverless-cdp/cdp/internal/store"
	"github.com/serverless-cdp/cdp/internal/timeline"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

// ProfileItems lists every item of one profile's timeline with its key: per-source and legacy
// items, items past retention (still stored) included; another profile's are not.
func TestProfileItemsListsEveryStoredItemWithItsKey(t *testing.T) {
	c := testenv.Clients(t)
	table := testenv.Table(t, c.DynamoDB)
	put := func(e *timeline.Event, legacy bool) {
		it, err := timeline.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		if legacy {
			it[store.PK] = store.S(timeline.PrefixMsgV1 + e.Message.MessageID)
		}
		if _, err := c.DynamoDB.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(table), Item: it}); err != nil {
			t.Fatal(err)
		}
	}
	ev := func(profile, mid string, expires time.Time) *timeline.Event {
		return &timeline.Event{Profile: profile, Source: "web", Expires: expires, Seq: 1,
			Message: tracking.Message{Type: "track", Event: "E", MessageID: mid, Timestamp: t0}}
	}
	put(ev("use_a", "m1", t0.Add(time.Hour)), false)
	put(ev("use_a", "m2", t0.Add(-time.Hour)), false) // past retention, not deleted yet
	put(ev("use_a", "old", t0.Add(time.Hour)), true)
	put(ev("use_b", "m3", t0.Add(time.Hour)), false)
	var got []string
	err := timeline.NewReader(c.DynamoDB, table).ProfileItems(context.Background(), "use_a", func(it timeline.Item) error {
		got = append(got, fmt.Sprintf("%s %s %s", it.Event.Message.MessageID, it.PK, it.SK))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(got)
	want := []string{
		"m1 " + timeline.PrefixMsg + timeline.MessageHash("web", "m1") + " MSG",
		"m2 " + timeline.PrefixMsg + timeline.MessageHash("web", "m2") + " MSG",
		"old MSG#old MSG",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("items:\n%v\nwant\n%v", got, want)
	}
}
