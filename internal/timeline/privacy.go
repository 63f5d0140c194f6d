package timeline

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/serverless-cdp/cdp/internal/store"
)

// Item is one stored timeline item of a profile: its table key (pk, sk) and the event.
type Item struct {
	PK, SK string
	Event  Event
}

// ProfileItems calls fn with every timeline item committed to one profile (not to the profiles
// merged into it): the gsi1 partition PROFILE#<id>, per-source (MSGSRC#) and legacy (MSG#)
// items alike, and items past their retention that DynamoDB has not deleted yet (they are still
// stored, so a privacy export shows them and an erasure deletes them). The index is eventually
// consistent: an item written a moment ago may be missing, one deleted a moment ago may still
// show. It stops at the first error fn returns and returns it.
func (r *Reader) ProfileItems(ctx context.Context, profileID string, fn func(it Item) error) error {
	return r.queryProfile(ctx, profileID, func(it map[string]types.AttributeValue) error { return fn(itemOf(it)) })
}

// itemOf decodes a timeline item; an event that cannot be decoded keeps its key and profile
// (it is still erased) with an empty message.
func itemOf(it map[string]types.AttributeValue) Item {
	ev, err := Decode(it)
	if err != nil {
		ev = Event{Profile: ProfileOf(it), Source: store.GetS(it, AttrSource), Seq: store.GetN(it, AttrSeq)}
	}
	return Item{PK: store.GetS(it, store.PK), SK: store.GetS(it, store.SK), Event: ev}
}
