package source

import (
	"context"
	"errors"
	"fmt"
	"github.com/serverless-cdp/cdp/internal/backoff"
	"sort"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/serverless-cdp/cdp/internal/store"
)

// Key prefixes (see the package documentation).
const (
	sourcesPK     = "SOURCES"
	sourceSKPfx   = "SOURCE#"
	nameSKPfx     = "NAME#"
	writeKeyPKPfx = "WRITEKEY#"
	writeKeySK    = "WRITEKEY"
)

// DynamoDB is the DynamoDB client the repository uses (the one interface, store.Client).
type DynamoDB = store.Client

// Resolver finds the source a write key belongs to. Implemented by Repository and Cache.
type Resolver interface {
	// ResolveWriteKey returns the source of a working key, or ErrNotFound for an unknown, revoked
	// or expired key. The caller checks Source.Enabled. Only ID, Name and Enabled are set.
	ResolveWriteKey(ctx context.Context, key string) (Source, error)
}

// Repository stores sources and write keys in the shared DynamoDB table.
type Repository struct {
	db    DynamoDB
	table string
	now   func() time.Time
}

// Option configures a Repository.
type Option func(*Repository)

// WithClock sets the clock (tests use it to move past grace periods).
func WithClock(now func() time.Time) Option { return func(r *Repository) { r.now = now } }

// NewRepository returns a repository over the named table.
func NewRepository(db DynamoDB, table string, opts ...Option) *Repository {
	r := &Repository{db: db, table: table, now: time.Now}
	for _, o := range opts {
		o(r)
	}
	return r
}

// sourceItem is the stored form of a source.
type sourceItem struct {
	PK        string             `dynamodbav:"pk"`
	SK        string             `dynamodbav:"sk"`
	ID        string             `dynamodbav:"id"`
	Name      string             `dynamodbav:"name"`
	Enabled   bool               `dynamodbav:"enabled"`
	CreatedAt string             `dynamodbav:"createdAt"`
	UpdatedAt string             `dynamodbav:"updatedAt"`
	Version   int64              `dynamodbav:"version"`
	Keys      map[string]keyMeta `dynamodbav:"keys"` // key hash → metadata
}

type keyMeta struct {
	CreatedAt   string `dynamodbav:"createdAt"`
	ExpiresAtMs int64  `dynamodbav:"expiresAtMs,omitempty"` // 0: no expiry
}

// keyItem is the stored form of one write key: what the hot path needs, copied from the source.
type keyItem struct {
	PK          string `dynamodbav:"pk"`
	SK          string `dynamodbav:"sk"`
	SourceID    string `dynamodbav:"sourceId"`
	SourceName  string `dynamodbav:"sourceName"`
	Enabled     bool   `dynamodbav:"enabled"`
	CreatedAt   string `dynamodbav:"createdAt"`
	ExpiresAtMs int64  `dynamodbav:"expiresAtMs,omitempty"`
	TTL         int64  `dynamodbav:"ttl,omitempty"` // lets DynamoDB delete expired keys eventually
}

func (m keyMeta) live(now time.Time) bool {
	return m.ExpiresAtMs == 0 || now.UnixMilli() < m.ExpiresAtMs
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func parseTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

// source converts the item; live keys are listed current first, then newest first.
func (it sourceItem) source(now time.Time) Source {
	s := Source{
		ID: it.ID, Name: it.Name, Enabled: it.Enabled,
		CreatedAt: parseTime(it.CreatedAt), UpdatedAt: parseTime(it.UpdatedAt),
		WriteKeys: []KeyInfo{},
	}
	for h, m := range it.Keys {
		if !m.live(now) {
			continue
		}
		ki := KeyInfo{ID: keyID(h), CreatedAt: parseTime(m.CreatedAt)}
		if m.ExpiresAtMs != 0 {
			t := time.UnixMilli(m.ExpiresAtMs).UTC()
			ki.ExpiresAt = &t
		}
		s.WriteKeys = append(s.WriteKeys, ki)
	}
	sort.Slice(s.WriteKeys, func(i, j int) bool {
		a, b := s.WriteKeys[i], s.WriteKeys[j]
		if (a.ExpiresAt == nil) != (b.ExpiresAt == nil) {
			return a.ExpiresAt == nil // current keys first
		}
		if !a.CreatedAt.Equal(b.CreatedAt) {
			return a.CreatedAt.After(b.CreatedAt) // newest first
		}
		return a.ID < b.ID
	})
	return s
}

func sourceKey(id string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		store.PK: &types.AttributeValueMemberS{Value: sourcesPK},
		store.SK: &types.AttributeValueMemberS{Value: sourceSKPfx + id},
	}
}

func nameKey(name string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		store.PK: &types.AttributeValueMemberS{Value: sourcesPK},
		store.SK: &types.AttributeValueMemberS{Value: nameSKPfx + name},
	}
}

func writeKeyKey(hash string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		store.PK: &types.AttributeValueMemberS{Value: writeKeyPKPfx + hash},
		store.SK: &types.AttributeValueMemberS{Value: writeKeySK},
	}
}

func numAV(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func ttlFor(expiresAtMs int64) int64 { return (expiresAtMs + 999) / 1000 }

// Create creates a source with a fresh write key and returns the key; it is not stored and cannot
// be shown again.
func (r *Repository) Create(ctx context.Context, name string) (Source, string, error) {
	if err := ValidateName(name); err != nil {
		return Source{}, "", err
	}
	key := NewWriteKey()
	s, err := r.create(ctx, name, key)
	if err != nil {
		return Source{}, "", err
	}
	return s, key, nil
}

func (r *Repository) create(ctx context.Context, name, key string) (Source, error) {
	now := r.now()
	hash := hashKey(key)
	it := sourceItem{
		PK: sourcesPK, SK: sourceSKPfx, Name: name, Enabled: true,
		CreatedAt: formatTime(now), UpdatedAt: formatTime(now), Version: 1,
		Keys: map[string]keyMeta{hash: {CreatedAt: formatTime(now)}},
	}
	it.ID = newID()
	it.SK += it.ID
	srcAV, err := attributevalue.MarshalMap(it)
	if err != nil {
		return Source{}, fmt.Errorf("marshal source: %w", err)
	}
	nameAV := nameKey(name)
	nameAV["sourceId"] = &types.AttributeValueMemberS{Value: it.ID}
	keyAV, err := attributevalue.MarshalMap(keyItem{
		PK: writeKeyPKPfx + hash, SK: writeKeySK, SourceID: it.ID, SourceName: name, Enabled: true,
		CreatedAt: formatTime(now),
	})
	if err != nil {
		return Source{}, fmt.Errorf("marshal write key: %w", err)
	}
	notExists := aws.String("attribute_not_exists(pk)")
	_, err = r.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Put: &types.Put{TableName: &r.table, Item: srcAV, ConditionExpression: notExists}},
		{Put: &types.Put{TableName: &r.table, Item: nameAV, ConditionExpression: notExists}},
		{Put: newKeyPut(r.table, keyAV, now)},
	}})
	if err != nil {
		reasons := store.FailedConditions(err)
		switch {
		case len(reasons) == 3 && reasons[1]:
			return Source{}, fmt.Errorf("%w: %q", ErrNameTaken, name)
		case len(reasons) == 3 && reasons[2]:
			return Source{}, fmt.Errorf("%w: write key already in use", ErrConflict)
		}
		return Source{}, fmt.Errorf("create source %q: %w", name, err)
	}
	return it.source(now), nil
}

// newKeyPut writes a new key item unless the key is already in use. An expired key item may
// linger until DynamoDB's TTL removes it; it is replaced.
func newKeyPut(table string, item map[string]types.AttributeValue, now time.Time) *types.Put {
	return &types.Put{
		TableName:                 aws.String(table),
		Item:                      item,
		ConditionExpression:       aws.String("attribute_not_exists(pk) OR expiresAtMs <= :now"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":now": numAV(now.UnixMilli())},
	}
}

// conflictBackoff spaces the re-reads after another writer changed a source.
var conflictBackoff = backoff.Policy{Base: 20 * time.Millisecond, Max: 200 * time.Millisecond}

// Get returns a source by id.
func (r *Repository) Get(ctx context.Context, id string) (Source, error) {
	it, err := r.getItem(ctx, id)
	if err != nil {
		return Source{}, err
	}
	return it.source(r.now()), nil
}

func (r *Repository) getItem(ctx context.Context, id string) (sourceItem, error) {
	if id == "" {
		return sourceItem{}, ErrNotFound
	}
	out, err := r.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &r.table, Key: sourceKey(id), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return sourceItem{}, fmt.Errorf("get source %s: %w", id, err)
	}
	if len(out.Item) == 0 {
		return sourceItem{}, ErrNotFound
	}
	var it sourceItem
	if err := attributevalue.UnmarshalMap(out.Item, &it); err != nil {
		return sourceItem{}, fmt.Errorf("decode source %s: %w", id, err)
	}
	return it, nil
}

// GetByName returns a source by its (unique) name.
func (r *Repository) GetByName(ctx context.Context, name string) (Source, error) {
	id, err := r.idByName(ctx, name)
	if err != nil {
		return Source{}, err
	}
	return r.Get(ctx, id)
}

func (r *Repository) idByName(ctx context.Context, name string) (string, error) {
	out, err := r.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &r.table, Key: nameKey(name), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return "", fmt.Errorf("get source name %q: %w", name, err)
	}
	if v, ok := out.Item["sourceId"].(*types.AttributeValueMemberS); ok {
		return v.Value, nil
	}
	return "", ErrNotFound
}

// List returns every source, oldest first.
func (r *Repository) List(ctx context.Context) ([]Source, error) {
	now := r.now()
	var (
		out = []Source{}
	)
	pages := dynamodb.NewQueryPaginator(r.db, &dynamodb.QueryInput{
		TableName:              &r.table,
		KeyConditionExpression: aws.String("pk = :pk AND begins_with(sk, :sk)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": &types.AttributeValueMemberS{Value: sourcesPK},
			":sk": &types.AttributeValueMemberS{Value: sourceSKPfx},
		},
		ConsistentRead: aws.Bool(true),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list sources: %w", err)
		}
		for _, item := range page.Items {
			var it sourceItem
			if err := attributevalue.UnmarshalMap(item, &it); err != nil {
				return nil, fmt.Errorf("decode source: %w", err)
			}
			out = append(out, it.source(now))
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// SetEnabled enables or disables a source. Its keys follow at once (the key items are updated in
// the same transaction); a Cache in front of ResolveWriteKey may serve the old state for its TTL.
func (r *Repository) SetEnabled(ctx context.Context, id string, enabled bool) (Source, error) {
	var result Source
	err := r.mutate(ctx, id, func(it *sourceItem, now time.Time) ([]types.TransactWriteItem, error) {
		if it.Enabled == enabled {
			result = it.source(now)
			return nil, nil
		}
		it.Enabled = enabled
		it.UpdatedAt = formatTime(now)
		tx, err := r.syncKeys(it, now, "")
		if err != nil {
			return nil, err
		}
		result = it.source(now)
		return tx, nil
	})
	return result, err
}

// RotateKey gives a source a new write key and returns it. With grace 0 every previous key stops
// working at once; otherwise previous keys keep working until now+grace (or their own earlier
// expiry), so clients can be redeployed without losing events.
func (r *Repository) RotateKey(ctx context.Context, id string, grace time.Duration) (Source, string, error) {
	if grace < 0 || grace > MaxGracePeriod {
		return Source{}, "", fmt.Errorf("%w: grace period must be between 0 and %s", ErrInvalid, MaxGracePeriod)
	}
	key := NewWriteKey()
	hash := hashKey(key)
	var result Source
	err := r.mutate(ctx, id, func(it *sourceItem, now time.Time) ([]types.TransactWriteItem, error) {
		expiry := int64(0)
		if grace > 0 {
			expiry = now.Add(grace).UnixMilli()
		}
		live := 0
		for h, m := range it.Keys {
			if !m.live(now) {
				continue
			}
			if grace == 0 {
				m.ExpiresAtMs = now.UnixMilli() // expired: syncKeys deletes it
			} else if m.ExpiresAtMs == 0 || m.ExpiresAtMs > expiry {
				m.ExpiresAtMs = expiry
				live++
			} else {
				live++
			}
			it.Keys[h] = m
		}
		if live+1 > MaxActiveKeys {
			return nil, fmt.Errorf("%w: source already has %d keys in a grace period; rotate with no grace period or wait for them to expire", ErrInvalid, live)
		}
		it.Keys[hash] = keyMeta{CreatedAt: formatTime(now)}
		it.UpdatedAt = formatTime(now)
		tx, err := r.syncKeys(it, now, hash)
		if err != nil {
			return nil, err
		}
		result = it.source(now)
		return tx, nil
	})
	if err != nil {
		return Source{}, "", err
	}
	return result, key, nil
}

// Delete deletes a source, its name and all its keys.
func (r *Repository) Delete(ctx context.Context, id string) error {
	return r.mutate(ctx, id, func(it *sourceItem, now time.Time) ([]types.TransactWriteItem, error) {
		tx := []types.TransactWriteItem{
			{Delete: &types.Delete{TableName: &r.table, Key: sourceKey(it.ID),
				ConditionExpression:       aws.String("version = :v"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":v": numAV(it.Version)}}},
			{Delete: &types.Delete{TableName: &r.table, Key: nameKey(it.Name)}},
		}
		for h := range it.Keys {
			tx = append(tx, types.TransactWriteItem{Delete: &types.Delete{TableName: &r.table, Key: writeKeyKey(h)}})
		}
		return tx, nil
	})
}

// mutate reads a source, lets fn change it and build the transaction (which must include a
// version-conditioned write of the source item), and retries when the source changed meanwhile.
// fn returning no items means nothing to write.
func (r *Repository) mutate(ctx context.Context, id string, fn func(it *sourceItem, now time.Time) ([]types.TransactWriteItem, error)) error {
	for attempt := 0; attempt < 5; attempt++ {
		it, err := r.getItem(ctx, id)
		if err != nil {
			return err
		}
		tx, err := fn(&it, r.now())
		if err != nil || len(tx) == 0 {
			return err
		}
		_, err = r.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: tx})
		if err == nil {
			return nil
		}
		if !store.IsConditionFailed(err) {
			return fmt.Errorf("update source %s: %w", id, err)
		}
		// Someone else changed the source (or a key expired under us): read again and retry.
		if err := backoff.Sleep(ctx, conflictBackoff.Delay(attempt+1)); err != nil {
			return err
		}
	}
	return fmt.Errorf("update source %s: %w", id, ErrConflict)
}

// syncKeys builds the transaction that writes the source item (conditioned on its version, which
// it increments) and brings every key item in line with it: expired keys are deleted, live keys
// get the source's name, enabled flag and expiry, and newHash (if set) is created.
func (r *Repository) syncKeys(it *sourceItem, now time.Time, newHash string) ([]types.TransactWriteItem, error) {
	prev := it.Version
	it.Version++
	var tx []types.TransactWriteItem
	for h, m := range it.Keys {
		switch {
		case !m.live(now):
			delete(it.Keys, h)
			tx = append(tx, types.TransactWriteItem{Delete: &types.Delete{TableName: &r.table, Key: writeKeyKey(h)}})
		case h == newHash:
			av, err := attributevalue.MarshalMap(keyItem{
				PK: writeKeyPKPfx + h, SK: writeKeySK, SourceID: it.ID, SourceName: it.Name,
				Enabled: it.Enabled, CreatedAt: m.CreatedAt, ExpiresAtMs: m.ExpiresAtMs, TTL: ttlFor(m.ExpiresAtMs),
			})
			if err != nil {
				return nil, fmt.Errorf("marshal write key: %w", err)
			}
			tx = append(tx, types.TransactWriteItem{Put: newKeyPut(r.table, av, now)})
		default:
			u := &types.Update{
				TableName:           &r.table,
				Key:                 writeKeyKey(h),
				ConditionExpression: aws.String("sourceId = :id"),
				ExpressionAttributeValues: map[string]types.AttributeValue{
					":id": &types.AttributeValueMemberS{Value: it.ID},
					":n":  &types.AttributeValueMemberS{Value: it.Name},
					":e":  &types.AttributeValueMemberBOOL{Value: it.Enabled},
				},
				ExpressionAttributeNames: map[string]string{"#ttl": store.TTL},
			}
			if m.ExpiresAtMs != 0 {
				u.UpdateExpression = aws.String("SET sourceName = :n, enabled = :e, expiresAtMs = :x, #ttl = :t")
				u.ExpressionAttributeValues[":x"] = numAV(m.ExpiresAtMs)
				u.ExpressionAttributeValues[":t"] = numAV(ttlFor(m.ExpiresAtMs))
			} else {
				u.UpdateExpression = aws.String("SET sourceName = :n, enabled = :e REMOVE expiresAtMs, #ttl")
			}
			tx = append(tx, types.TransactWriteItem{Update: u})
		}
	}
	srcAV, err := attributevalue.MarshalMap(it)
	if err != nil {
		return nil, fmt.Errorf("marshal source: %w", err)
	}
	tx = append([]types.TransactWriteItem{{Put: &types.Put{
		TableName:                 &r.table,
		Item:                      srcAV,
		ConditionExpression:       aws.String("version = :v"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":v": numAV(prev)},
	}}}, tx...)
	return tx, nil
}

// ResolveWriteKey returns the source a write key belongs to with one eventually consistent
// GetItem (half the read cost of a strongly consistent one; a revocation is visible within about
// a second, well inside any cache TTL). Unknown, revoked and expired keys give ErrNotFound.
func (r *Repository) ResolveWriteKey(ctx context.Context, key string) (Source, error) {
	if key == "" || len(key) > maxKeyLength {
		return Source{}, ErrNotFound
	}
	out, err := r.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &r.table, Key: writeKeyKey(hashKey(key))})
	if err != nil {
		return Source{}, fmt.Errorf("resolve write key: %w", err)
	}
	if len(out.Item) == 0 {
		return Source{}, ErrNotFound
	}
	var ki keyItem
	if err := attributevalue.UnmarshalMap(out.Item, &ki); err != nil {
		return Source{}, fmt.Errorf("decode write key: %w", err)
	}
	if ki.ExpiresAtMs != 0 && r.now().UnixMilli() >= ki.ExpiresAtMs {
		return Source{}, ErrNotFound
	}
	return Source{ID: ki.SourceID, Name: ki.SourceName, Enabled: ki.Enabled}, nil
}

// EnsureSource makes sure a source with this name exists and that the given plaintext key works
// for it, creating the source or adding the key as needed; calling it again changes nothing. It is
// meant for the local runner's well-known development write key: a chosen key may have little
// entropy, so production keys should come from Create or RotateKey.
func (r *Repository) EnsureSource(ctx context.Context, name, writeKey string) (Source, error) {
	if err := ValidateName(name); err != nil {
		return Source{}, err
	}
	if err := validateGivenKey(writeKey); err != nil {
		return Source{}, err
	}
	hash := hashKey(writeKey)
	for attempt := 0; attempt < 5; attempt++ {
		// Already a working key? Then it belongs to a source and there is nothing to do.
		if s, owned, err := r.keyOwner(ctx, name, hash); owned || err != nil {
			return s, err
		}
		id, err := r.idByName(ctx, name)
		switch {
		case errors.Is(err, ErrNotFound):
			s, err := r.create(ctx, name, writeKey)
			if errors.Is(err, ErrNameTaken) || errors.Is(err, ErrConflict) {
				continue // created concurrently: look again
			}
			return s, err
		case err != nil:
			return Source{}, err
		}
		s, err := r.addKey(ctx, id, name, hash)
		if errors.Is(err, ErrNotFound) {
			continue // deleted meanwhile
		}
		return s, err
	}
	return Source{}, fmt.Errorf("ensure source %q: %w", name, ErrConflict)
}

// keyOwner reports whether the write key with this hash is live: then it returns the source it
// belongs to, or ErrConflict when that is not the source named.
func (r *Repository) keyOwner(ctx context.Context, name, hash string) (Source, bool, error) {
	out, err := r.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &r.table, Key: writeKeyKey(hash), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return Source{}, false, fmt.Errorf("ensure source %q: %w", name, err)
	}
	if len(out.Item) == 0 {
		return Source{}, false, nil
	}
	var ki keyItem
	if err := attributevalue.UnmarshalMap(out.Item, &ki); err != nil {
		return Source{}, false, fmt.Errorf("decode write key: %w", err)
	}
	if ki.ExpiresAtMs != 0 && r.now().UnixMilli() >= ki.ExpiresAtMs {
		return Source{}, false, nil
	}
	if ki.SourceName != name {
		return Source{}, true, fmt.Errorf("%w: the write key already belongs to source %q", ErrConflict, ki.SourceName)
	}
	s, err := r.Get(ctx, ki.SourceID)
	return s, true, err
}

// addKey adds the key with this hash to source id (nothing when it is already a live key of it),
// within MaxActiveKeys.
func (r *Repository) addKey(ctx context.Context, id, name, hash string) (Source, error) {
	var result Source
	err := r.mutate(ctx, id, func(it *sourceItem, now time.Time) ([]types.TransactWriteItem, error) {
		if m, ok := it.Keys[hash]; ok && m.live(now) {
			result = it.source(now)
			return nil, nil
		}
		live := 0
		for _, m := range it.Keys {
			if m.live(now) {
				live++
			}
		}
		if live+1 > MaxActiveKeys {
			return nil, fmt.Errorf("%w: source %q already has %d keys", ErrInvalid, name, live)
		}
		it.Keys[hash] = keyMeta{CreatedAt: formatTime(now)}
		it.UpdatedAt = formatTime(now)
		tx, err := r.syncKeys(it, now, hash)
		if err != nil {
			return nil, err
		}
		result = it.source(now)
		return tx, nil
	})
	return result, err
}
