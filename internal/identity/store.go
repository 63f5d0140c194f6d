package identity

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/serverless-cdp/cdp/internal/store"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

// Key prefixes and sort keys this package owns in the shared table.
const (
	prefixID      = "ID#"      // ID#<type>:<value> / ID → profile
	prefixProfile = "PROFILE#" // PROFILE#<id> / PROFILE, and PROFILE#<id> / LOG#<at>#<messageId>
	prefixMsg     = "MSGSRC#"  // MSGSRC#<hash of sourceId, messageId> / MSG: the event (timeline item and dedupe marker)
	prefixMsgV1   = "MSG#"     // MSG#<messageId> / MSG: the same, written before dedupe was per source
	prefixLog     = "LOG#"
	prefixEvt     = "EVT#" // gsi1sk of timeline items: EVT#<timestamp>#<hash of sourceId, messageId>
	prefixAttempt = "ATTEMPT#identity#"
	pkRules       = "RULES"
	skID          = "ID"
	skProfile     = "PROFILE"
	skMsg         = "MSG"
	skRules       = "IDENTITY"
	skAttempt     = "ATTEMPT"
)

// maxTxItems is DynamoDB's limit of items per TransactWriteItems; maxTxBytes stays under 4 MB.
const (
	maxTxItems = 100
	maxTxBytes = 3 << 20
)

// DynamoAPI is the part of the DynamoDB client the store uses.
type DynamoAPI interface {
	GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Query(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	BatchGetItem(context.Context, *dynamodb.BatchGetItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	TransactWriteItems(context.Context, *dynamodb.TransactWriteItemsInput, ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

// Usage is the request units consumed so far: as DynamoDB reported them (ConsumedCapacity,
// requested TOTAL on every call), and as AWS's pricing rules compute them from item sizes
// (Model*). The model exists because DynamoDB Local under-reports: it charges nothing for
// BatchGetItem keys that are not found and reports a flat figure for TransactWriteItems
// whatever the item count. Model rules: reads 0.5 unit per 4 KB per item (eventually
// consistent; 1 if strongly consistent), a missing key costs the minimum; queries 0.5 per 4 KB
// read; transactional writes 2 units per KB per item; a GSI write 1 unit per KB.
type Usage struct {
	ReadUnits, WriteUnits           float64
	ModelReadUnits, ModelWriteUnits float64
	Requests                        int
	// Conflicts counts transactions cancelled because another writer changed what was read.
	Conflicts int
}

type meter struct {
	mu sync.Mutex
	u  Usage
}

func (m *meter) model(read, write float64) {
	m.mu.Lock()
	m.u.ModelReadUnits += read
	m.u.ModelWriteUnits += write
	m.mu.Unlock()
}

func units(size, per int) float64 { return float64((size + per - 1) / per) }

func (m *meter) add(read bool, cc ...types.ConsumedCapacity) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.u.Requests++
	for _, c := range cc {
		r, w := aws.ToFloat64(c.ReadCapacityUnits), aws.ToFloat64(c.WriteCapacityUnits)
		if r == 0 && w == 0 {
			if read {
				r = aws.ToFloat64(c.CapacityUnits)
			} else {
				w = aws.ToFloat64(c.CapacityUnits)
			}
		}
		m.u.ReadUnits += r
		m.u.WriteUnits += w
	}
}

// Store is the DynamoDB repository of the identity graph, timelines and merge logs.
type Store struct {
	db    DynamoAPI
	table string
	m     meter
	now   func() time.Time
}

// NewStore returns a store on the named table.
func NewStore(db DynamoAPI, table string) *Store {
	return &Store{db: db, table: table, now: time.Now}
}

// Usage returns the request units consumed through this store.
func (s *Store) Usage() Usage {
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	return s.m.u
}

func sv(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }
func nv(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{store.PK: sv(pk), store.SK: sv(sk)}
}

func idKey(id Identifier) map[string]types.AttributeValue { return key(prefixID+id.String(), skID) }
func profileKey(id string) map[string]types.AttributeValue {
	return key(prefixProfile+id, skProfile)
}

// msgRef identifies a message: messageId is unique within a source (as Segment scopes it), so
// the same id from two sources is two events.
type msgRef struct{ source, id string }

func refOf(r *tracking.Record) msgRef { return msgRef{source: r.SourceID, id: r.Message.MessageID} }

// hash is the fixed-length form of a message reference used in keys, so a key is always valid.
func (r msgRef) hash() string { return hashID(r.source + "\x00" + r.id) }

func msgKey(r msgRef) map[string]types.AttributeValue { return key(prefixMsg+r.hash(), skMsg) }

func legacyMsgKey(id string) map[string]types.AttributeValue { return key(prefixMsgV1+id, skMsg) }

// sortTime formats a time with fixed width so that it sorts lexically.
func sortTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000000Z") }

// batchGet reads items by key, 100 per request, retrying unprocessed keys. The result is keyed
// by pk.
func (s *Store) batchGet(ctx context.Context, keys []map[string]types.AttributeValue, consistent bool, projection string, names map[string]string) (map[string]map[string]types.AttributeValue, error) {
	out := map[string]map[string]types.AttributeValue{}
	for start := 0; start < len(keys); start += 100 {
		end := min(start+100, len(keys))
		ka := types.KeysAndAttributes{Keys: keys[start:end], ConsistentRead: aws.Bool(consistent)}
		if projection != "" {
			ka.ProjectionExpression = aws.String(projection)
			ka.ExpressionAttributeNames = names
		}
		req := map[string]types.KeysAndAttributes{s.table: ka}
		for attempt := 0; len(req) > 0; attempt++ {
			if attempt > 0 {
				if err := sleepCtx(ctx, time.Duration(min(attempt, 6))*20*time.Millisecond); err != nil {
					return nil, err
				}
			}
			res, err := s.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req, ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal})
			if err != nil {
				return nil, fmt.Errorf("batch get: %w", err)
			}
			s.m.add(true, res.ConsumedCapacity...)
			rate := 0.5
			if consistent {
				rate = 1
			}
			var model float64
			found := 0
			for _, it := range res.Responses[s.table] {
				out[store.GetS(it, store.PK)] = it
				model += rate * max(1, units(store.ItemSize(it), 4096))
				found++
			}
			requested := len(req[s.table].Keys) - len(res.UnprocessedKeys[s.table].Keys)
			model += rate * float64(max(0, requested-found))
			s.m.model(model, 0)
			req = res.UnprocessedKeys
			if attempt > 20 && len(req) > 0 {
				return nil, errors.New("batch get: keys left unprocessed after 20 attempts")
			}
		}
	}
	return out, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// loadIndex returns the profile id each identifier's index item names (absent: not indexed).
func (s *Store) loadIndex(ctx context.Context, ids []Identifier, consistent bool) (map[Identifier]string, error) {
	keys := make([]map[string]types.AttributeValue, 0, len(ids))
	for _, id := range ids {
		keys = append(keys, idKey(id))
	}
	items, err := s.batchGet(ctx, keys, consistent, "", nil)
	if err != nil {
		return nil, fmt.Errorf("load identifiers: %w", err)
	}
	out := map[Identifier]string{}
	for _, id := range ids {
		if it, ok := items[prefixID+id.String()]; ok {
			out[id] = store.GetS(it, "profile")
		}
	}
	return out, nil
}

// marker is the dedupe marker of a processed message: the timeline item it wrote.
type marker struct {
	profile string            // the profile the message went to (follow merges for the survivor)
	msg     *tracking.Message // the event as stored; nil if it cannot be decoded
}

// loadMarkers returns the dedupe markers of the messages already processed. The stored event
// comes along: DynamoDB charges a read by the whole item's size whatever the projection, so
// reading it costs no extra request units, and a redelivered message can be re-emitted. With
// legacy, the markers written before dedupe was per source (MSG#<messageId>) are read too; one
// counts for a message of the same source only.
func (s *Store) loadMarkers(ctx context.Context, refs []msgRef, consistent, legacy bool) (map[msgRef]marker, error) {
	keys := make([]map[string]types.AttributeValue, 0, 2*len(refs))
	byPK := map[string]msgRef{}
	legacyIDs := map[string][]msgRef{}
	for _, r := range refs {
		k := msgKey(r)
		byPK[store.GetS(k, store.PK)] = r
		keys = append(keys, k)
		if legacy {
			if _, ok := legacyIDs[r.id]; !ok {
				keys = append(keys, legacyMsgKey(r.id))
			}
			legacyIDs[r.id] = append(legacyIDs[r.id], r)
		}
	}
	items, err := s.batchGet(ctx, keys, consistent, "pk, profile, msg, #source", map[string]string{"#source": "source"})
	if err != nil {
		return nil, fmt.Errorf("load dedupe markers: %w", err)
	}
	out := map[msgRef]marker{}
	for pk, it := range items {
		mk := decodeMarker(it)
		if r, ok := byPK[pk]; ok {
			out[r] = mk
			continue
		}
		src := store.GetS(it, "source")
		for _, r := range legacyIDs[strings.TrimPrefix(pk, prefixMsgV1)] {
			if _, found := out[r]; !found && (src == "" || src == r.source) {
				out[r] = mk
			}
		}
	}
	return out, nil
}

func decodeMarker(it map[string]types.AttributeValue) marker {
	mk := marker{profile: store.GetS(it, "profile")}
	if raw := store.GetS(it, "msg"); raw != "" {
		var m tracking.Message
		if json.Unmarshal([]byte(raw), &m) == nil {
			mk.msg = &m
		}
	}
	return mk
}

// loadProfiles reads profiles by id and follows merge pointers until every survivor is loaded.
func (s *Store) loadProfiles(ctx context.Context, into map[string]*Profile, ids []string, consistent bool) error {
	want := ids
	for round := 0; len(want) > 0; round++ {
		if round > 64 {
			return errors.New("load profiles: merge pointers form a chain longer than 64")
		}
		var keys []map[string]types.AttributeValue
		seen := map[string]bool{}
		for _, id := range want {
			if _, ok := into[id]; !ok && !seen[id] {
				seen[id] = true
				keys = append(keys, profileKey(id))
			}
		}
		if len(keys) == 0 {
			return nil
		}
		items, err := s.batchGet(ctx, keys, consistent, "", nil)
		if err != nil {
			return fmt.Errorf("load profiles: %w", err)
		}
		want = nil
		for pk, it := range items {
			p, err := decodeProfile(it)
			if err != nil {
				return fmt.Errorf("profile %s: %w", pk, err)
			}
			into[p.ID] = p
			if p.MergedInto != "" {
				want = append(want, p.MergedInto)
			}
		}
	}
	return nil
}

// compressAbove is the profile document size above which it is stored gzip-compressed: request
// units are charged per KB written and per 4 KB read, and profiles are rewritten often.
const compressAbove = 900

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	_, _ = w.Write(b)
	_ = w.Close()
	return buf.Bytes()
}

func decodeProfile(it map[string]types.AttributeValue) (*Profile, error) {
	var p Profile
	data := []byte(store.GetS(it, "data"))
	if z, ok := it["dataz"].(*types.AttributeValueMemberB); ok {
		r, err := gzip.NewReader(bytes.NewReader(z.Value))
		if err != nil {
			return nil, fmt.Errorf("decompress profile: %w", err)
		}
		if data, err = io.ReadAll(r); err != nil {
			return nil, fmt.Errorf("decompress profile: %w", err)
		}
	}
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("decode profile: %w", err)
	}
	p.Version = store.GetN(it, "version")
	p.ID = strings.TrimPrefix(store.GetS(it, store.PK), prefixProfile)
	return &p, nil
}

// LogEntry is one line of a profile's merge log: what one message did to the identity graph.
type LogEntry struct {
	At        time.Time `json:"at"`
	MessageID string    `json:"messageId"`
	ProfileID string    `json:"profileId"` // the profile the message went to
	Actions   []Action  `json:"actions"`
}

// Action kinds in the merge log.
const (
	ActionCreate  = "create"  // a new profile with these identifiers
	ActionAttach  = "attach"  // identifiers added to an existing profile
	ActionMerge   = "merge"   // profiles merged into the target
	ActionDrop    = "drop"    // an identifier left out because a limit would break
	ActionBlocked = "blocked" // an identifier ignored because its value is blocked
	ActionRefused = "refused" // trait updates not applied (Traits names them), e.g. for the trait budget
)

// Action is one decision: which identifiers, which profiles, which rule.
type Action struct {
	Kind        string       `json:"kind"`
	Identifiers []Identifier `json:"identifiers,omitempty"`
	Profiles    []string     `json:"profiles,omitempty"`
	// Traits are the trait keys a refused action concerns.
	Traits []string `json:"traits,omitempty"`
	Rule   string   `json:"rule,omitempty"`
}

// StoredEvent is a timeline item.
type StoredEvent struct {
	ProfileID string           `json:"profileId"`
	SourceID  string           `json:"sourceId"`
	Message   tracking.Message `json:"message"`
	Expires   time.Time        `json:"expires"`
}

// txn is the atomic write of one component of a batch: the profiles it changes (conditioned on
// the versions read), new identifier index items, the events (timeline and dedupe marker in one
// item) and merge log lines.
type txn struct {
	profiles []*Profile
	ids      map[Identifier]string
	events   []StoredEvent
	logs     []LogEntry
}

// errConflict means a condition failed: another writer changed what this one read.
var errConflict = errors.New("identity: concurrent change, retry")

func (s *Store) commit(ctx context.Context, t *txn) error {
	items, err := s.txnItems(t)
	if err != nil {
		return err
	}
	if len(items) == 0 {
		return nil
	}
	var model float64
	for _, it := range items {
		size := store.ItemSize(it.Put.Item)
		model += 2 * max(1, units(size, 1024))
		if _, indexed := it.Put.Item[store.GSI1PK]; indexed {
			model += max(1, units(size, 1024))
		}
	}
	s.m.model(0, model)
	out, err := s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
		TransactItems:          items,
		ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
	})
	if err != nil {
		s.m.add(false)
		return s.commitError(err, len(items))
	}
	s.m.add(false, out.ConsumedCapacity...)
	return nil
}

// commitError classifies a failed transaction: errConflict when a condition failed or another
// transaction interfered (re-plan), the error as is otherwise.
func (s *Store) commitError(err error, n int) error {
	var tc *types.TransactionCanceledException
	if errors.As(err, &tc) {
		for _, r := range tc.CancellationReasons {
			switch aws.ToString(r.Code) {
			case "", "None", "ConditionalCheckFailed", "TransactionConflict":
			default:
				return fmt.Errorf("commit %d items: %w", n, err)
			}
		}
	} else if tce := (*types.TransactionConflictException)(nil); !errors.As(err, &tce) {
		return fmt.Errorf("commit %d items: %w", n, err)
	}
	s.m.mu.Lock()
	s.m.u.Conflicts++
	s.m.mu.Unlock()
	return fmt.Errorf("%w: %v", errConflict, err)
}

// txnItems builds the items of a component's transaction.
func (s *Store) txnItems(t *txn) ([]types.TransactWriteItem, error) {
	var items []types.TransactWriteItem
	now := s.now()
	for _, p := range t.profiles {
		data, err := json.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("encode profile: %w", err)
		}
		item := profileKey(p.ID)
		item["version"] = nv(p.Version + 1)
		if len(data) > compressAbove {
			item["dataz"] = &types.AttributeValueMemberB{Value: gz(data)}
		} else {
			item["data"] = sv(string(data))
		}
		if p.MergedInto != "" {
			item["mergedInto"] = sv(p.MergedInto)
		}
		put := &types.Put{TableName: aws.String(s.table), Item: item}
		if p.Version == 0 {
			put.ConditionExpression = aws.String("attribute_not_exists(pk)")
		} else {
			put.ConditionExpression = aws.String("version = :v")
			put.ExpressionAttributeValues = map[string]types.AttributeValue{":v": nv(p.Version)}
		}
		items = append(items, types.TransactWriteItem{Put: put})
	}
	idList := make([]Identifier, 0, len(t.ids))
	for id := range t.ids {
		idList = append(idList, id)
	}
	sort.Slice(idList, func(i, j int) bool { return identLess(idList[i], idList[j]) })
	for _, id := range idList {
		item := idKey(id)
		item["profile"] = sv(t.ids[id])
		item["createdAt"] = sv(now.UTC().Format(time.RFC3339Nano))
		items = append(items, types.TransactWriteItem{Put: &types.Put{
			TableName: aws.String(s.table), Item: item, ConditionExpression: aws.String("attribute_not_exists(pk)"),
		}})
	}
	for _, e := range t.events {
		msg, err := json.Marshal(e.Message)
		if err != nil {
			return nil, fmt.Errorf("encode event: %w", err)
		}
		ref := msgRef{source: e.SourceID, id: e.Message.MessageID}
		item := msgKey(ref)
		item["profile"] = sv(e.ProfileID)
		item["source"] = sv(e.SourceID)
		item["msg"] = sv(string(msg))
		item[store.GSI1PK] = sv(prefixProfile + e.ProfileID)
		item[store.GSI1SK] = sv(prefixEvt + sortTime(e.Message.Timestamp) + "#" + ref.hash())
		item[store.TTL] = nv(e.Expires.Unix())
		items = append(items, types.TransactWriteItem{Put: &types.Put{
			TableName: aws.String(s.table), Item: item, ConditionExpression: aws.String("attribute_not_exists(pk)"),
		}})
	}
	for _, l := range t.logs {
		data, err := json.Marshal(l)
		if err != nil {
			return nil, fmt.Errorf("encode merge log: %w", err)
		}
		item := key(prefixProfile+l.ProfileID, prefixLog+sortTime(l.At)+"#"+l.MessageID)
		item["data"] = sv(string(data))
		items = append(items, types.TransactWriteItem{Put: &types.Put{TableName: aws.String(s.table), Item: item}})
	}
	return items, nil
}

// ---- reads for the Profile API and tests ----

// Profile returns the live profile with this id, following merge pointers; nil if unknown.
func (s *Store) Profile(ctx context.Context, id string) (*Profile, error) {
	ps := map[string]*Profile{}
	if err := s.loadProfiles(ctx, ps, []string{id}, false); err != nil {
		return nil, err
	}
	return follow(ps, id), nil
}

func follow(ps map[string]*Profile, id string) *Profile {
	for i := 0; i < 100; i++ {
		p, ok := ps[id]
		if !ok {
			return nil
		}
		if p.MergedInto == "" {
			return p
		}
		id = p.MergedInto
	}
	return nil
}

// Lookup returns the live profile holding an identifier; nil if none does.
func (s *Store) Lookup(ctx context.Context, id Identifier) (*Profile, error) {
	idx, err := s.loadIndex(ctx, []Identifier{id}, false)
	if err != nil {
		return nil, err
	}
	pid, ok := idx[id]
	if !ok {
		return nil, nil
	}
	return s.Profile(ctx, pid)
}

// Page asks for the newest items older than the cursor Next (opaque; "" for the first page).
type Page struct {
	Limit int
	Next  string
}

// Events returns a page of a profile's timeline, newest first, including the timelines of the
// profiles merged into it. Expired events (past the retention TTL) are left out.
func (s *Store) Events(ctx context.Context, p *Profile, page Page) ([]StoredEvent, string, error) {
	items, next, err := s.newestFirst(ctx, page, func(id string) (string, string, string) {
		return store.GSI1, store.GSI1PK, prefixProfile + id
	}, p, prefixEvt, store.GSI1SK)
	if err != nil {
		return nil, "", fmt.Errorf("events: %w", err)
	}
	out := make([]StoredEvent, 0, len(items))
	for _, it := range items {
		var m tracking.Message
		if err := json.Unmarshal([]byte(store.GetS(it, "msg")), &m); err != nil {
			return nil, "", fmt.Errorf("decode event: %w", err)
		}
		out = append(out, StoredEvent{ProfileID: store.GetS(it, "profile"), SourceID: store.GetS(it, "source"), Message: m, Expires: time.Unix(store.GetN(it, store.TTL), 0).UTC()})
	}
	return out, next, nil
}

// MergeLog returns a page of the merge log of a profile and the profiles merged into it,
// newest first.
func (s *Store) MergeLog(ctx context.Context, p *Profile, page Page) ([]LogEntry, string, error) {
	items, next, err := s.newestFirst(ctx, page, func(id string) (string, string, string) {
		return "", store.PK, prefixProfile + id
	}, p, prefixLog, store.SK)
	if err != nil {
		return nil, "", fmt.Errorf("merge log: %w", err)
	}
	out := make([]LogEntry, 0, len(items))
	for _, it := range items {
		var l LogEntry
		if err := json.Unmarshal([]byte(store.GetS(it, "data")), &l); err != nil {
			return nil, "", fmt.Errorf("decode merge log: %w", err)
		}
		out = append(out, l)
	}
	return out, next, nil
}

// newestFirst queries the partitions of a profile and every profile merged into it and merges
// them, newest (largest sort key) first.
func (s *Store) newestFirst(ctx context.Context, page Page, part func(id string) (index, pkName, pk string), p *Profile, prefix, skName string) ([]map[string]types.AttributeValue, string, error) {
	limit := page.Limit
	if limit <= 0 {
		limit = 10
	}
	var before string
	if page.Next != "" {
		b, err := base64.RawURLEncoding.DecodeString(page.Next)
		if err != nil || !strings.HasPrefix(string(b), prefix) {
			return nil, "", &CursorError{}
		}
		before = string(b)
	}
	ids := append([]string{p.ID}, p.MergedFrom...)
	var all []map[string]types.AttributeValue
	now := s.now().Unix()
	for _, id := range ids {
		index, pkName, pk := part(id)
		in := &dynamodb.QueryInput{
			TableName:                aws.String(s.table),
			ScanIndexForward:         aws.Bool(false),
			Limit:                    aws.Int32(int32(limit + 1)),
			ExpressionAttributeNames: map[string]string{"#pk": pkName, "#sk": skName},
			ReturnConsumedCapacity:   types.ReturnConsumedCapacityTotal,
		}
		if index != "" {
			in.IndexName = aws.String(index)
		}
		if before != "" {
			in.KeyConditionExpression = aws.String("#pk = :pk AND #sk BETWEEN :lo AND :hi")
			in.ExpressionAttributeValues = map[string]types.AttributeValue{":pk": sv(pk), ":lo": sv(prefix), ":hi": sv(before)}
		} else {
			in.KeyConditionExpression = aws.String("#pk = :pk AND begins_with(#sk, :pre)")
			in.ExpressionAttributeValues = map[string]types.AttributeValue{":pk": sv(pk), ":pre": sv(prefix)}
		}
		got := 0
		for got < limit+1 {
			out, err := s.db.Query(ctx, in)
			if err != nil {
				return nil, "", err
			}
			if out.ConsumedCapacity != nil {
				s.m.add(true, *out.ConsumedCapacity)
			}
			read := 0
			for _, it := range out.Items {
				read += store.ItemSize(it)
			}
			s.m.model(0.5*max(1, units(read, 4096)), 0)
			for _, it := range out.Items {
				if store.GetS(it, skName) == before { // BETWEEN is inclusive
					continue
				}
				if ttl := store.GetN(it, store.TTL); ttl != 0 && ttl < now {
					continue
				}
				all = append(all, it)
				got++
			}
			if out.LastEvaluatedKey == nil {
				break
			}
			in.ExclusiveStartKey = out.LastEvaluatedKey
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return store.GetS(all[i], skName) > store.GetS(all[j], skName) })
	next := ""
	if len(all) > limit {
		all = all[:limit]
		next = base64.RawURLEncoding.EncodeToString([]byte(store.GetS(all[limit-1], skName)))
	}
	return all, next, nil
}

// CursorError is a `next` value this store did not issue.
type CursorError struct{}

func (*CursorError) Error() string { return "invalid paging cursor" }
