package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	"golang.org/x/sync/errgroup"

	"github.com/serverless-cdp/cdp/internal/backoff"
	"github.com/serverless-cdp/cdp/internal/store"
	"github.com/serverless-cdp/cdp/internal/timeline"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

// Key prefixes and sort keys this package owns in the shared table.
const (
	prefixID      = "ID#"                  // ID#<type>:<value> / ID → profile
	prefixProfile = timeline.PrefixProfile // PROFILE#<id> / PROFILE, and PROFILE#<id> / LOG#<at>#<messageId>
	prefixMsg     = timeline.PrefixMsg     // the event (timeline item and dedupe marker): see internal/timeline
	prefixMsgV1   = timeline.PrefixMsgV1   // the same, written before dedupe was per source
	prefixLog     = "LOG#"
	prefixEvt     = timeline.PrefixEvt // gsi1sk of timeline items
	prefixAttempt = "ATTEMPT#identity#"
	pkRules       = "RULES"
	skID          = "ID"
	skProfile     = timeline.SKProfile
	skMsg         = timeline.SKMsg
	skRules       = "IDENTITY"
	skAttempt     = "ATTEMPT"
)

// maxTxItems is DynamoDB's limit of items per TransactWriteItems; maxTxBytes stays under 4 MB.
const (
	maxTxItems = 100
	maxTxBytes = 3 << 20
)

// attemptTTL is how long a message's failure counter is kept.
const attemptTTL = 7 * 24 * time.Hour

// Store is the DynamoDB adapter of the identity graph, timelines, merge logs and attempt
// counters (GraphStore, AttemptCounter, and the Profile API's read model).
type Store struct {
	db    store.Client
	table string
	now   func() time.Time
}

var (
	_ GraphStore     = (*Store)(nil)
	_ AttemptCounter = (*Store)(nil)
)

// NewStore returns a store on the named table.
func NewStore(db store.Client, table string) *Store {
	return &Store{db: db, table: table, now: time.Now}
}

type attrs = map[string]types.AttributeValue

func idKey(id Identifier) attrs    { return store.Key(prefixID+id.String(), skID) }
func profileKey(id string) attrs   { return store.Key(prefixProfile+id, skProfile) }
func msgKey(r MessageRef) attrs    { return timeline.Key(r.Source, r.ID) }
func legacyMsgKey(id string) attrs { return store.Key(prefixMsgV1+id, skMsg) }
func attemptKey(source, id string) attrs {
	return store.Key(prefixAttempt+hashID(source+"\x00"+id), skAttempt)
}

// Stored items, encoded with attributevalue.
type (
	profileItem struct {
		PK         string `dynamodbav:"pk"`
		SK         string `dynamodbav:"sk"`
		Version    int64  `dynamodbav:"version"`
		Data       string `dynamodbav:"data,omitempty"`
		DataZ      []byte `dynamodbav:"dataz,omitempty"`
		MergedInto string `dynamodbav:"mergedInto,omitempty"`
	}
	indexItem struct {
		PK        string `dynamodbav:"pk"`
		SK        string `dynamodbav:"sk"`
		Profile   string `dynamodbav:"profile"`
		CreatedAt string `dynamodbav:"createdAt,omitempty"`
	}
	logItem struct {
		PK   string `dynamodbav:"pk"`
		SK   string `dynamodbav:"sk"`
		Data string `dynamodbav:"data"`
	}
	attemptItem struct {
		N int `dynamodbav:"n"`
	}
)

// compressAbove is the profile document size above which it is stored gzip-compressed: request
// units are charged per KB written and per 4 KB read, and profiles are rewritten often.
const compressAbove = 900

func gz(b []byte) []byte { return timeline.Gzip(b) }

// encodeProfile is the item of a profile as the next version (p.Version+1).
func encodeProfile(p *Profile) (attrs, error) {
	data, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode profile: %w", err)
	}
	it := profileItem{PK: prefixProfile + p.ID, SK: skProfile, Version: p.Version + 1, MergedInto: p.MergedInto}
	if len(data) > compressAbove {
		it.DataZ = gz(data)
	} else {
		it.Data = string(data)
	}
	return marshal(it)
}

func decodeProfile(av attrs) (*Profile, error) {
	var it profileItem
	if err := attributevalue.UnmarshalMap(av, &it); err != nil {
		return nil, fmt.Errorf("decode profile attrs: %w", err)
	}
	data, err := timeline.ProfileDocument(av)
	if err != nil {
		return nil, err
	}
	var p Profile
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("decode profile: %w", err)
	}
	p.Version = it.Version
	p.ID = strings.TrimPrefix(it.PK, prefixProfile)
	return &p, nil
}

func encodeIndex(id Identifier, profile string, now time.Time) (attrs, error) {
	return marshal(indexItem{PK: prefixID + id.String(), SK: skID, Profile: profile, CreatedAt: now.UTC().Format(time.RFC3339Nano)})
}

// timelineEvent is the timeline package's form of a stored event.
func timelineEvent(e *StoredEvent) *timeline.Event {
	return &timeline.Event{Profile: e.ProfileID, Source: e.SourceID, Message: e.Message, Expires: e.Expires, Seq: e.Seq}
}

func encodeEvent(e StoredEvent) (attrs, error) { return timeline.Encode(timelineEvent(&e)) }

func decodeEvent(av attrs) (StoredEvent, error) {
	e, err := timeline.Decode(av)
	if err != nil {
		return StoredEvent{}, err
	}
	return StoredEvent{ProfileID: e.Profile, SourceID: e.Source, Message: e.Message, Expires: e.Expires, Seq: e.Seq}, nil
}

func encodeLog(l LogEntry) (attrs, error) {
	data, err := json.Marshal(l)
	if err != nil {
		return nil, fmt.Errorf("encode merge log: %w", err)
	}
	return marshal(logItem{PK: prefixProfile + l.ProfileID, SK: logSortKey(l), Data: string(data)})
}

func marshal(v any) (attrs, error) {
	av, err := attributevalue.MarshalMap(v)
	if err != nil {
		return nil, fmt.Errorf("encode attrs: %w", err)
	}
	return av, nil
}

// asRefused wraps an error by which DynamoDB refused a request for what it holds (a key too
// long, an item too large, an invalid value) in ErrRefused; other errors are returned as is.
func asRefused(err error) error {
	var tc *types.TransactionCanceledException
	if errors.As(err, &tc) {
		for _, r := range tc.CancellationReasons {
			if c := aws.ToString(r.Code); c == "ValidationError" || c == "ItemCollectionSizeLimitExceeded" {
				return fmt.Errorf("%w: %w", ErrRefused, err)
			}
		}
		return err
	}
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "ValidationException" {
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	return err
}

// isThrottled reports whether DynamoDB turned a write down before doing it: for the rate, or
// because the item is part of another writer's transaction in progress (nothing was written).
func isThrottled(err error) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	switch ae.ErrorCode() {
	case "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded", "TransactionConflictException":
		return true
	}
	return false
}

// batchGetPolicy paces the retries of keys DynamoDB left unprocessed (throttling).
var batchGetPolicy = backoff.Policy{Attempts: 22, Base: 20 * time.Millisecond, Max: 120 * time.Millisecond}

var errUnprocessed = errors.New("batch get: keys left unprocessed after 22 attempts")

// batchGet reads items by key, 100 per request, retrying unprocessed keys. The result is keyed
// by pk.
func (s *Store) batchGet(ctx context.Context, keys []attrs, consistent bool, proj *expression.ProjectionBuilder) (map[string]attrs, error) {
	out := map[string]attrs{}
	ka := types.KeysAndAttributes{ConsistentRead: aws.Bool(consistent)}
	if proj != nil {
		e, err := expression.NewBuilder().WithProjection(*proj).Build()
		if err != nil {
			return nil, fmt.Errorf("batch get projection: %w", err)
		}
		ka.ProjectionExpression, ka.ExpressionAttributeNames = e.Projection(), e.Names()
	}
	for start := 0; start < len(keys); start += 100 {
		ka.Keys = keys[start:min(start+100, len(keys))]
		req := map[string]types.KeysAndAttributes{s.table: ka}
		err := backoff.Retry(ctx, batchGetPolicy, func(ctx context.Context) error {
			res, err := s.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
			if err != nil {
				return backoff.Permanent(fmt.Errorf("batch get: %w", asRefused(err)))
			}
			for _, it := range res.Responses[s.table] {
				out[store.GetS(it, store.PK)] = it
			}
			if req = res.UnprocessedKeys; len(req) > 0 && len(req[s.table].Keys) > 0 {
				return errUnprocessed
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Index returns the profile id each identifier's index item names (absent: not indexed).
func (s *Store) Index(ctx context.Context, ids []Identifier, consistent bool) (map[Identifier]string, error) {
	keys := make([]attrs, 0, len(ids))
	for _, id := range ids {
		keys = append(keys, idKey(id))
	}
	items, err := s.batchGet(ctx, keys, consistent, nil)
	if err != nil {
		return nil, err
	}
	out := map[Identifier]string{}
	for _, id := range ids {
		if it, ok := items[prefixID+id.String()]; ok {
			out[id] = store.GetS(it, "profile")
		}
	}
	return out, nil
}

// Markers returns the dedupe markers of the messages already processed. The stored event
// comes along: DynamoDB charges a read by the whole item's size whatever the projection, so
// reading it costs no extra request units, and a redelivered message can be re-emitted.
func (s *Store) Markers(ctx context.Context, refs []MessageRef, consistent, legacy bool) (map[MessageRef]Marker, error) {
	keys := make([]attrs, 0, 2*len(refs))
	byPK := map[string]MessageRef{}
	legacyIDs := map[string][]MessageRef{}
	for _, r := range refs {
		k := msgKey(r)
		byPK[store.GetS(k, store.PK)] = r
		keys = append(keys, k)
		if legacy {
			if _, ok := legacyIDs[r.ID]; !ok {
				keys = append(keys, legacyMsgKey(r.ID))
			}
			legacyIDs[r.ID] = append(legacyIDs[r.ID], r)
		}
	}
	proj := expression.NamesList(expression.Name(store.PK), expression.Name(timeline.AttrProfile), expression.Name(store.GSI1PK),
		expression.Name(timeline.AttrMsg), expression.Name(timeline.AttrMsgZ), expression.Name(timeline.AttrSource), expression.Name(timeline.AttrSeq))
	items, err := s.batchGet(ctx, keys, consistent, &proj)
	if err != nil {
		return nil, err
	}
	out := map[MessageRef]Marker{}
	for pk, it := range items {
		mk := decodeMarker(it)
		if r, ok := byPK[pk]; ok {
			out[r] = mk
			continue
		}
		applyLegacyMarker(out, legacyIDs[strings.TrimPrefix(pk, prefixMsgV1)], store.GetS(it, timeline.AttrSource), mk)
	}
	return out, nil
}

// applyLegacyMarker lets a marker written before dedupe was per source count for the messages
// of its source (of any source if it names none) that have no marker of their own.
func applyLegacyMarker(out map[MessageRef]Marker, refs []MessageRef, source string, mk Marker) {
	for _, r := range refs {
		if _, found := out[r]; !found && (source == "" || source == r.Source) {
			out[r] = mk
		}
	}
}

// decodeMarker reads the dedupe marker of an event item; Msg is nil if the event cannot be
// decoded.
func decodeMarker(it attrs) Marker {
	raw, err := timeline.MessageJSON(it)
	if err != nil {
		raw = nil
	}
	return newMarker(timeline.ProfileOf(it), raw, store.GetN(it, timeline.AttrSeq))
}

// newMarker is the marker of an event stored as raw (JSON) with profile and seq.
func newMarker(profile string, raw []byte, seq int64) Marker {
	mk := Marker{Profile: profile, Seq: seq}
	if len(raw) > 0 {
		var m tracking.Message
		if json.Unmarshal(raw, &m) == nil {
			mk.Msg = &m
		}
	}
	return mk
}

// Profiles reads stored profiles by id.
func (s *Store) Profiles(ctx context.Context, ids []string, consistent bool) (map[string]*Profile, error) {
	keys := make([]attrs, 0, len(ids))
	for _, id := range ids {
		keys = append(keys, profileKey(id))
	}
	items, err := s.batchGet(ctx, keys, consistent, nil)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*Profile, len(items))
	for pk, it := range items {
		p, err := decodeProfile(it)
		if err != nil {
			return nil, fmt.Errorf("profile %s: %w", pk, err)
		}
		out[p.ID] = p
	}
	return out, nil
}

// Commit writes a component in one transaction.
func (s *Store) Commit(ctx context.Context, c *Commit) error {
	items, err := s.commitItems(c)
	if err != nil {
		return err
	}
	if len(items) == 0 {
		return nil
	}
	if _, err := s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items}); err != nil {
		if store.IsConditionFailed(err) {
			return fmt.Errorf("%w: %v", ErrConflict, err)
		}
		return fmt.Errorf("commit %d items: %w", len(items), asRefused(err))
	}
	return nil
}

// maxItemBytes is DynamoDB's limit on one item.
const maxItemBytes = 400 << 10

// appendParallel bounds the concurrent event puts of one Append.
const appendParallel = 8

// Append writes a commit of one stored profile and events as single conditional puts: the
// profile (conditioned on its version) first, then the events (conditioned on not existing) in
// parallel. An event found stored comes back as a Dup with its marker (the stored item, returned
// by the failed put).
func (s *Store) Append(ctx context.Context, c *Commit) ([]Appended, error) {
	if !appendable(c) {
		return nil, errNotAppendable
	}
	p := c.Profiles[0]
	prof, err := encodeProfile(p)
	if err != nil {
		return nil, err
	}
	evs := make([]attrs, len(c.Events))
	for i, e := range c.Events {
		if evs[i], err = encodeEvent(e); err != nil {
			return nil, err
		}
	}
	for _, it := range append([]attrs{prof}, evs...) {
		if n := store.ItemSize(it); n > maxItemBytes {
			return nil, fmt.Errorf("%w: ValidationException: item of %d bytes (at most %d)", ErrRefused, n, maxItemBytes)
		}
	}
	cond := expression.Name("version").Equal(expression.Value(p.Version))
	if err := s.put(ctx, prof, cond, false); err != nil {
		if store.IsConditionFailed(err) {
			return nil, fmt.Errorf("%w: profile %s: %v", ErrConflict, p.ID, err)
		}
		return nil, fmt.Errorf("append: profile: %w", asRefused(err))
	}
	out := make([]Appended, len(evs))
	var g errgroup.Group
	g.SetLimit(appendParallel)
	for i, it := range evs {
		g.Go(func() error {
			out[i] = s.appendEvent(ctx, it, refOfEvent(c.Events[i]))
			return nil
		})
	}
	_ = g.Wait() // the outcomes are in out
	return out, nil
}

func refOfEvent(e StoredEvent) MessageRef {
	return MessageRef{Source: e.SourceID, ID: e.Message.MessageID}
}

// appendEvent puts one event item on the condition that it does not exist; a failed condition
// is a Dup with the stored item's marker (read consistently if the put did not return it).
func (s *Store) appendEvent(ctx context.Context, it attrs, ref MessageRef) Appended {
	err := s.put(ctx, it, expression.AttributeNotExists(expression.Name(store.PK)), true)
	var cf *types.ConditionalCheckFailedException
	if err == nil {
		return Appended{}
	}
	if !errors.As(err, &cf) {
		err = asRefused(err)
		return Appended{Err: fmt.Errorf("append: event: %w", err), Unwritten: isRefused(err) || isThrottled(err)}
	}
	if len(cf.Item) > 0 {
		mk := decodeMarker(cf.Item)
		return Appended{Dup: &mk}
	}
	mks, rerr := s.Markers(ctx, []MessageRef{ref}, true, false)
	if mk, ok := mks[ref]; ok && rerr == nil {
		return Appended{Dup: &mk}
	}
	return Appended{Err: fmt.Errorf("append: event stored already, but its marker cannot be read: %w", errors.Join(err, rerr))}
}

// put writes one item on a condition; old asks for the stored item when the condition fails.
func (s *Store) put(ctx context.Context, it attrs, cond expression.ConditionBuilder, old bool) error {
	e, err := expression.NewBuilder().WithCondition(cond).Build()
	if err != nil {
		return fmt.Errorf("put condition: %w", err)
	}
	in := &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: it,
		ConditionExpression: e.Condition(), ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values()}
	if old {
		in.ReturnValuesOnConditionCheckFailure = types.ReturnValuesOnConditionCheckFailureAllOld
	}
	_, err = s.db.PutItem(ctx, in)
	return err
}

// commitItems builds the items of a component's transaction: profiles conditioned on their
// version, index entries and events on not existing, merge log lines unconditioned.
func (s *Store) commitItems(c *Commit) ([]types.TransactWriteItem, error) {
	notExists, err := expression.NewBuilder().WithCondition(expression.AttributeNotExists(expression.Name(store.PK))).Build()
	if err != nil {
		return nil, fmt.Errorf("commit condition: %w", err)
	}
	var items []types.TransactWriteItem
	err = forEachCommitItem(c, s.now(), func(it attrs, version int64, conditioned bool) error {
		p := &types.Put{TableName: aws.String(s.table), Item: it}
		e := notExists // shared by the items that must not exist yet (the SDK only reads it)
		switch {
		case !conditioned:
			items = append(items, types.TransactWriteItem{Put: p})
			return nil
		case version > 0:
			if e, err = expression.NewBuilder().WithCondition(expression.Name("version").Equal(expression.Value(version))).Build(); err != nil {
				return fmt.Errorf("commit condition: %w", err)
			}
		}
		p.ConditionExpression, p.ExpressionAttributeNames, p.ExpressionAttributeValues = e.Condition(), e.Names(), e.Values()
		items = append(items, types.TransactWriteItem{Put: p})
		return nil
	})
	return items, err
}

// forEachCommitItem encodes the items of a commit in a fixed order (profiles by id, index
// entries by identifier, events, merge log lines) and calls fn with each, the version it is
// conditioned on (0: must not exist) and whether it is conditioned at all.
func forEachCommitItem(c *Commit, now time.Time, fn func(it attrs, version int64, conditioned bool) error) error {
	for _, p := range c.Profiles {
		it, err := encodeProfile(p)
		if err == nil {
			err = fn(it, p.Version, true)
		}
		if err != nil {
			return err
		}
	}
	ids := make([]Identifier, 0, len(c.IDs))
	for id := range c.IDs {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return identLess(ids[i], ids[j]) })
	for _, id := range ids {
		it, err := encodeIndex(id, c.IDs[id], now)
		if err == nil {
			err = fn(it, 0, true)
		}
		if err != nil {
			return err
		}
	}
	for _, e := range c.Events {
		it, err := encodeEvent(e)
		if err == nil {
			err = fn(it, 0, true)
		}
		if err != nil {
			return err
		}
	}
	for _, l := range c.Logs {
		it, err := encodeLog(l)
		if err == nil {
			err = fn(it, 0, false)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// CountAttempt increments and returns the failure count of a message (kept a week).
func (s *Store) CountAttempt(ctx context.Context, sourceID, messageID string) (int, error) {
	upd := expression.Add(expression.Name("n"), expression.Value(1)).
		Set(expression.Name(store.TTL), expression.Value(s.now().Add(attemptTTL).Unix()))
	e, err := expression.NewBuilder().WithUpdate(upd).Build()
	if err != nil {
		return 0, fmt.Errorf("count attempt: %w", err)
	}
	out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: attemptKey(sourceID, messageID),
		UpdateExpression: e.Update(), ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values(),
		ReturnValues: types.ReturnValueUpdatedNew,
	})
	if err != nil {
		return 0, fmt.Errorf("count attempt: %w", err)
	}
	var a attemptItem
	if err := attributevalue.UnmarshalMap(out.Attributes, &a); err != nil {
		return 0, fmt.Errorf("count attempt: %w", err)
	}
	return a.N, nil
}

// Attempts returns how many attempts of a message have failed so far.
func (s *Store) Attempts(ctx context.Context, sourceID, messageID string) (int, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: attemptKey(sourceID, messageID)})
	if err != nil {
		return 0, fmt.Errorf("read attempt count: %w", err)
	}
	var a attemptItem
	if err := attributevalue.UnmarshalMap(out.Item, &a); err != nil {
		return 0, fmt.Errorf("read attempt count: %w", err)
	}
	return a.N, nil
}

// ---- reads for the Profile API and tests ----

// Profile returns the live profile with this id, following merge pointers; nil if unknown.
func (s *Store) Profile(ctx context.Context, id string) (*Profile, error) {
	return readProfile(ctx, s, id)
}

// Lookup returns the live profile holding an identifier; nil if none does.
func (s *Store) Lookup(ctx context.Context, id Identifier) (*Profile, error) {
	return lookup(ctx, s, id)
}

// Events returns a page of a profile's timeline, newest first, including the timelines of the
// profiles merged into it. Expired events (past the retention TTL) are left out.
func (s *Store) Events(ctx context.Context, p *Profile, page Page) ([]StoredEvent, string, error) {
	out, next, err := newestFirst(ctx, s, p, page, partition{index: store.GSI1, pk: store.GSI1PK, sk: store.GSI1SK, prefix: prefixEvt}, decodeEvent)
	if err != nil {
		return nil, "", fmt.Errorf("events: %w", err)
	}
	return out, next, nil
}

// MergeLog returns a page of the merge log of a profile and the profiles merged into it,
// newest first.
func (s *Store) MergeLog(ctx context.Context, p *Profile, page Page) ([]LogEntry, string, error) {
	out, next, err := newestFirst(ctx, s, p, page, partition{pk: store.PK, sk: store.SK, prefix: prefixLog}, decodeLog)
	if err != nil {
		return nil, "", fmt.Errorf("merge log: %w", err)
	}
	return out, next, nil
}

func decodeLog(av attrs) (LogEntry, error) {
	var it logItem
	var l LogEntry
	if err := attributevalue.UnmarshalMap(av, &it); err != nil {
		return l, fmt.Errorf("decode merge log attrs: %w", err)
	}
	if err := json.Unmarshal([]byte(it.Data), &l); err != nil {
		return l, fmt.Errorf("decode merge log: %w", err)
	}
	return l, nil
}

// partition names where a profile's timeline or merge log lives: the index (none: the table),
// its key attributes and the sort key prefix of the entries.
type partition struct{ index, pk, sk, prefix string }

// newestFirst queries the partitions of a profile and every profile merged into it and merges
// them, newest (largest sort key) first.
func newestFirst[T any](ctx context.Context, s *Store, p *Profile, page Page, part partition, decode func(attrs) (T, error)) ([]T, string, error) {
	limit, before, err := pageBounds(page, part.prefix)
	if err != nil {
		return nil, "", err
	}
	var all []sorted[T]
	now := s.now().Unix()
	for _, id := range append([]string{p.ID}, p.MergedFrom...) {
		items, err := s.queryNewest(ctx, part, prefixProfile+id, before, limit+1, now)
		if err != nil {
			return nil, "", err
		}
		for _, it := range items {
			v, err := decode(it)
			if err != nil {
				return nil, "", err
			}
			all = append(all, sorted[T]{key: store.GetS(it, part.sk), val: v})
		}
	}
	out, next := newestPage(all, limit)
	return out, next, nil
}

// queryNewest returns up to want unexpired items of one partition, newest first, older than
// before ("" for none).
func (s *Store) queryNewest(ctx context.Context, part partition, pk, before string, want int, now int64) ([]attrs, error) {
	kc := expression.Key(part.pk).Equal(expression.Value(pk))
	if before != "" {
		kc = kc.And(expression.Key(part.sk).Between(expression.Value(part.prefix), expression.Value(before)))
	} else {
		kc = kc.And(expression.Key(part.sk).BeginsWith(part.prefix))
	}
	e, err := expression.NewBuilder().WithKeyCondition(kc).Build()
	if err != nil {
		return nil, fmt.Errorf("query condition: %w", err)
	}
	in := &dynamodb.QueryInput{
		TableName: aws.String(s.table), ScanIndexForward: aws.Bool(false), Limit: aws.Int32(int32(want)),
		KeyConditionExpression: e.KeyCondition(), ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values(),
	}
	if part.index != "" {
		in.IndexName = aws.String(part.index)
	}
	var out []attrs
	pages := dynamodb.NewQueryPaginator(s.db, in)
	for len(out) < want && pages.HasMorePages() {
		res, err := pages.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, it := range res.Items {
			if store.GetS(it, part.sk) == before { // BETWEEN is inclusive
				continue
			}
			if ttl := store.GetN(it, store.TTL); ttl != 0 && ttl < now {
				continue
			}
			out = append(out, it)
		}
	}
	return out, nil
}
