package destination

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/serverless-cdp/cdp/internal/store"
	"github.com/serverless-cdp/cdp/internal/webhook"
)

const (
	destsPK   = "DESTS"
	destSKPfx = "DEST#"
)

// DynamoDB is the part of the DynamoDB client the service uses.
type DynamoDB interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
}

// Service manages destinations in the shared table. Safe for concurrent use.
type Service struct {
	db     DynamoDB
	table  string
	policy webhook.Policy
	now    func() time.Time
}

// Option configures a Service.
type Option func(*Service)

// WithClock sets the clock.
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// WithPolicy sets which non-public URLs are accepted (default: public only).
func WithPolicy(p webhook.Policy) Option { return func(s *Service) { s.policy = p } }

// NewService returns a service over the named table.
func NewService(db DynamoDB, table string, opts ...Option) *Service {
	s := &Service{db: db, table: table, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

type doc struct {
	Destination
	StoredSecrets []storedSecret `json:"storedSecrets"`
}

func key(id string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		store.PK: &types.AttributeValueMemberS{Value: destsPK},
		store.SK: &types.AttributeValueMemberS{Value: destSKPfx + id},
	}
}

func decode(item map[string]types.AttributeValue) (Destination, error) {
	av, ok := item["doc"].(*types.AttributeValueMemberS)
	if !ok {
		return Destination{}, errors.New("destination item has no doc")
	}
	var d doc
	if err := json.Unmarshal([]byte(av.Value), &d); err != nil {
		return Destination{}, fmt.Errorf("decode destination: %w", err)
	}
	out := d.Destination
	out.Secrets = make([]Secret, len(d.StoredSecrets))
	for i, s := range d.StoredSecrets {
		out.Secrets[i] = Secret{Value: s.Value, Hint: hint(s.Value), CreatedAt: s.CreatedAt, ExpiresAt: s.ExpiresAt}
	}
	return out, nil
}

func hint(secret string) string {
	if len(secret) > 10 {
		return secret[:10] + "…"
	}
	return "…"
}

// put writes d; prev is the version it must replace (0: must not exist).
func (s *Service) put(ctx context.Context, d Destination, prev int64) error {
	dd := doc{Destination: d}
	for _, sec := range d.Secrets {
		dd.StoredSecrets = append(dd.StoredSecrets, storedSecret{Value: sec.Value, CreatedAt: sec.CreatedAt, ExpiresAt: sec.ExpiresAt})
	}
	dd.Destination.Secrets = nil
	b, err := json.Marshal(dd)
	if err != nil {
		return fmt.Errorf("encode destination: %w", err)
	}
	item := key(d.ID)
	item["doc"] = &types.AttributeValueMemberS{Value: string(b)}
	item["version"] = &types.AttributeValueMemberN{Value: strconv.FormatInt(d.Version, 10)}
	in := &dynamodb.PutItemInput{TableName: &s.table, Item: item}
	if prev == 0 {
		in.ConditionExpression = aws.String("attribute_not_exists(pk)")
	} else {
		in.ConditionExpression = aws.String("version = :v")
		in.ExpressionAttributeValues = map[string]types.AttributeValue{":v": &types.AttributeValueMemberN{Value: strconv.FormatInt(prev, 10)}}
	}
	_, err = s.db.PutItem(ctx, in)
	var cfe *types.ConditionalCheckFailedException
	if errors.As(err, &cfe) {
		return ErrConflict
	}
	if err != nil {
		return fmt.Errorf("put destination %s: %w", d.ID, err)
	}
	return nil
}

func newID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "dst_" + hex.EncodeToString(b)
}

// Create stores a new destination and returns it with its signing secret (shown only now).
func (s *Service) Create(ctx context.Context, spec Spec) (Destination, string, error) {
	if err := spec.normalize(s.policy); err != nil {
		return Destination{}, "", err
	}
	now := s.now().UTC()
	secret := spec.Secret
	if secret == "" {
		secret = webhook.NewSecret()
	}
	d := Destination{ID: newID(), CreatedAt: now, Version: 1,
		Secrets: []Secret{{Value: secret, Hint: hint(secret), CreatedAt: now}}}
	apply(&d, spec, now)
	if err := s.put(ctx, d, 0); err != nil {
		return Destination{}, "", err
	}
	return d, secret, nil
}

func apply(d *Destination, spec Spec, now time.Time) {
	d.Name, d.URL, d.Signing, d.BatchSize = spec.Name, spec.URL, spec.Signing, spec.BatchSize
	d.TimeoutSeconds, d.Headers, d.Subscriptions = spec.TimeoutSeconds, spec.Headers, spec.Subscriptions
	d.Enabled = spec.Enabled == nil || *spec.Enabled
	if d.Enabled {
		d.DisabledReason = ""
	}
	d.UpdatedAt = now
}

// Get returns one destination.
func (s *Service) Get(ctx context.Context, id string) (Destination, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: key(id), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return Destination{}, fmt.Errorf("get destination %s: %w", id, err)
	}
	if out.Item == nil {
		return Destination{}, ErrNotFound
	}
	return decode(out.Item)
}

// List returns every destination, by name.
func (s *Service) List(ctx context.Context) ([]Destination, error) {
	var out []Destination
	var start map[string]types.AttributeValue
	for {
		res, err := s.db.Query(ctx, &dynamodb.QueryInput{
			TableName:              &s.table,
			KeyConditionExpression: aws.String("pk = :pk AND begins_with(sk, :p)"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":pk": &types.AttributeValueMemberS{Value: destsPK}, ":p": &types.AttributeValueMemberS{Value: destSKPfx},
			},
			ConsistentRead:    aws.Bool(true),
			ExclusiveStartKey: start,
		})
		if err != nil {
			return nil, fmt.Errorf("list destinations: %w", err)
		}
		for _, it := range res.Items {
			d, err := decode(it)
			if err != nil {
				return nil, err
			}
			out = append(out, d)
		}
		if start = res.LastEvaluatedKey; start == nil {
			break
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// modify applies fn to the stored destination with optimistic concurrency, retrying conflicts.
func (s *Service) modify(ctx context.Context, id string, fn func(*Destination) error) (Destination, error) {
	for attempt := 0; ; attempt++ {
		d, err := s.Get(ctx, id)
		if err != nil {
			return Destination{}, err
		}
		prev := d.Version
		if err := fn(&d); err != nil {
			return Destination{}, err
		}
		d.Version = prev + 1
		d.UpdatedAt = s.now().UTC()
		err = s.put(ctx, d, prev)
		if errors.Is(err, ErrConflict) && attempt < 5 {
			continue
		}
		return d, err
	}
}

// Update replaces the definition (everything in Spec except Secret; use RotateSecret).
func (s *Service) Update(ctx context.Context, id string, spec Spec) (Destination, error) {
	spec.Secret = ""
	if err := spec.normalize(s.policy); err != nil {
		return Destination{}, err
	}
	return s.modify(ctx, id, func(d *Destination) error {
		apply(d, spec, s.now().UTC())
		return nil
	})
}

// SetEnabled enables or disables a destination; reason is kept when disabling (e.g. "410 Gone").
func (s *Service) SetEnabled(ctx context.Context, id string, enabled bool, reason string) (Destination, error) {
	return s.modify(ctx, id, func(d *Destination) error {
		d.Enabled = enabled
		d.DisabledReason = ""
		if !enabled {
			d.DisabledReason = reason
		}
		return nil
	})
}

// Disable disables a destination, keeping the reason.
func (s *Service) Disable(ctx context.Context, id, reason string) error {
	_, err := s.SetEnabled(ctx, id, false, reason)
	return err
}

// RotateSecret makes a fresh secret current. The previous current secret keeps signing for
// grace (DefaultGrace if 0; a negative grace retires it at once); expired secrets are dropped.
// It returns the new secret, shown only now.
func (s *Service) RotateSecret(ctx context.Context, id string, grace time.Duration) (Destination, string, error) {
	if grace == 0 {
		grace = DefaultGrace
	}
	secret := webhook.NewSecret()
	d, err := s.modify(ctx, id, func(d *Destination) error {
		now := s.now().UTC()
		exp := now.Add(max(grace, 0))
		kept := []Secret{{Value: secret, Hint: hint(secret), CreatedAt: now}}
		for _, old := range d.Secrets {
			if old.ExpiresAt != nil && !now.Before(*old.ExpiresAt) {
				continue
			}
			if old.ExpiresAt == nil || old.ExpiresAt.After(exp) {
				old.ExpiresAt = &exp
			}
			if grace > 0 {
				kept = append(kept, old)
			}
		}
		d.Secrets = kept
		return nil
	})
	if err != nil {
		return Destination{}, "", err
	}
	return d, secret, nil
}

// Delete removes a destination. Its deliveries, queue entries and dead letters stay until they
// expire or are purged; queued retries of a deleted destination are dropped (and logged).
func (s *Service) Delete(ctx context.Context, id string) error {
	_, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: &s.table, Key: key(id), ConditionExpression: aws.String("attribute_exists(pk)"),
	})
	var cfe *types.ConditionalCheckFailedException
	if errors.As(err, &cfe) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("delete destination %s: %w", id, err)
	}
	return nil
}
