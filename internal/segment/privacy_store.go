package segment

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/serverless-cdp/cdp/internal/store"
)

// Keys of the stage's counters: SEGSTATS / DROPPED holds `erased`, the change records dropped
// because their profile was erased.
const (
	pkStats     = "SEGSTATS"
	skDropped   = "DROPPED"
	maxEraseTry = 8
)

// personalKey is the key of an item derived from a profile's state, with its kind.
type personalKey struct {
	kind   string
	pk, sk string
}

// personalKeys are the keys of the items derived from a profile's state.
func personalKeys(pid string, audiences []string) []personalKey {
	keys := []personalKey{
		{KindSchedule, pkSchedPfx + pid, skNext},
		{KindRegistration, pkRegPfx + regShard(pid), pid},
	}
	for _, a := range audiences {
		keys = append(keys, personalKey{KindMemberships, pkMembersPfx + a, skMemberPfx + pid})
	}
	return keys
}

// exportDerived converts a derived item to its export.
func exportDerived(kind, pk string, it map[string]types.AttributeValue) any {
	pid := store.GetS(it, "profileId")
	switch kind {
	case KindMemberships:
		t, _ := time.Parse(time.RFC3339Nano, store.GetS(it, "enteredAt"))
		return ExportedMembership{AudienceID: strings.TrimPrefix(pk, pkMembersPfx), ProfileID: pid, EnteredAt: t}
	case KindSchedule:
		next, _, _ := strings.Cut(store.GetS(it, store.GSI1SK), "#")
		return ExportedSchedule{ProfileID: pid, Next: next}
	default:
		return ExportedRegistration{ProfileID: store.GetS(it, store.SK), Shard: strings.TrimPrefix(pk, pkRegPfx)}
	}
}

// ProfileData returns every item kept about a profile (see PersonalStore).
func (st *Store) ProfileData(ctx context.Context, pid string, audiences []string) ([]PersonalItem, error) {
	l, err := st.Load(ctx, pid, true)
	if err != nil {
		return nil, err
	}
	var out []PersonalItem
	if l.State != nil && !l.State.Erased {
		out = append(out, PersonalItem{Kind: KindProfileState, Value: exportState(l)})
	}
	for _, v := range l.legacy {
		out = append(out, PersonalItem{Kind: KindOutbox, Value: l.Outbox[v]})
	}
	for _, k := range personalKeys(pid, memberAudiences(l.State, audiences)) {
		got, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(st.table), Key: store.Key(k.pk, k.sk), ConsistentRead: aws.Bool(true)})
		if err != nil {
			return nil, fmt.Errorf("profile data %s: %w", k.kind, err)
		}
		if got.Item != nil {
			out = append(out, PersonalItem{Kind: k.kind, Value: exportDerived(k.kind, k.pk, got.Item)})
		}
	}
	return out, nil
}

// EraseProfile tombstones a profile's state and deletes the items derived from it (see
// PersonalStore).
func (st *Store) EraseProfile(ctx context.Context, pid string, audiences []string, expires time.Time) (map[string]int, error) {
	n := map[string]int{}
	l, err := st.tombstone(ctx, pid, expires, n)
	if err != nil {
		return n, err
	}
	for _, v := range l.legacy {
		if err := st.deleteCounted(ctx, pkStatePfx+pid, skOutboxPfx+strconv.FormatInt(v, 10), KindOutbox, n); err != nil {
			return n, err
		}
	}
	for _, k := range personalKeys(pid, memberAudiences(l.State, audiences)) {
		if err := st.deleteCounted(ctx, k.pk, k.sk, k.kind, n); err != nil {
			return n, err
		}
	}
	return n, nil
}

// tombstone replaces a profile's state with a tombstone, conditionally on the version it read
// (re-reading when a commit won the race), and returns the state it replaced.
func (st *Store) tombstone(ctx context.Context, pid string, expires time.Time, n map[string]int) (*Snapshot, error) {
	for try := 0; ; try++ {
		l, err := st.Load(ctx, pid, true)
		if err != nil {
			return nil, err
		}
		if l.State != nil && l.State.Erased {
			return l, nil
		}
		var ver int64
		if l.State != nil {
			ver = l.State.Ver
		}
		data, err := encodeState(tombstone(pid, 0))
		if err != nil {
			return nil, err
		}
		item := marshal(blobItem{PK: pkStatePfx + pid, SK: skState, Data: data, Ver: ver + 1})
		item[store.TTL] = &types.AttributeValueMemberN{Value: strconv.FormatInt(expires.Unix(), 10)}
		c := versionCond("ver", ver)
		_, err = st.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(st.table), Item: item,
			ConditionExpression: c.Condition(), ExpressionAttributeNames: c.Names(), ExpressionAttributeValues: c.Values()})
		switch {
		case store.IsConditionFailed(err) && try < maxEraseTry:
			continue
		case err != nil:
			return nil, fmt.Errorf("erase state %s: %w", pid, err)
		}
		if l.State != nil {
			n[KindProfileState]++
		}
		return l, nil
	}
}

// deleteCounted deletes an item and counts it under kind when it existed.
func (st *Store) deleteCounted(ctx context.Context, pk, sk, kind string, n map[string]int) error {
	out, err := st.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(st.table), Key: store.Key(pk, sk),
		ReturnValues: types.ReturnValueAllOld})
	if err != nil {
		return fmt.Errorf("erase %s: %w", kind, err)
	}
	if len(out.Attributes) > 0 {
		n[kind]++
	}
	return nil
}

// AddDropped counts change records dropped for an erased profile.
func (st *Store) AddDropped(ctx context.Context, n int) error {
	_, err := st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(st.table), Key: store.Key(pkStats, skDropped),
		UpdateExpression:          aws.String("ADD erased :n"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":n": &types.AttributeValueMemberN{Value: strconv.Itoa(n)}}})
	if err != nil {
		return fmt.Errorf("count dropped records: %w", err)
	}
	return nil
}

// Dropped returns how many change records were dropped for erased profiles.
func (st *Store) Dropped(ctx context.Context) (int64, error) {
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(st.table), Key: store.Key(pkStats, skDropped), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return 0, fmt.Errorf("dropped records: %w", err)
	}
	var c struct {
		Erased int64 `dynamodbav:"erased"`
	}
	if err := attributevalue.UnmarshalMap(out.Item, &c); err != nil {
		return 0, fmt.Errorf("dropped records: %w", err)
	}
	return c.Erased, nil
}
