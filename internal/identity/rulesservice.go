package identity

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/serverless-cdp/cdp/internal/store"
)

// MaxRulesCache is the longest a process keeps using rules before re-reading them, so a change
// takes effect within a minute.
const MaxRulesCache = 60 * time.Second

// RulesService stores the identity rules (item RULES / IDENTITY) and serves them to the
// resolution with a cache of at most MaxRulesCache. The admin API and the config file use Get
// and Put.
type RulesService struct {
	db    store.Client
	table string
	ttl   time.Duration
	now   func() time.Time

	mu       sync.Mutex
	cached   *Compiled
	loadedAt time.Time
}

// rulesItem is the stored rule set.
type rulesItem struct {
	PK        string `dynamodbav:"pk"`
	SK        string `dynamodbav:"sk"`
	Data      string `dynamodbav:"data"`
	UpdatedAt string `dynamodbav:"updatedAt,omitempty"`
}

// NewRulesService returns a service; cacheTTL 0 or above MaxRulesCache means MaxRulesCache.
func NewRulesService(db store.Client, table string, cacheTTL time.Duration) *RulesService {
	if cacheTTL <= 0 || cacheTTL > MaxRulesCache {
		cacheTTL = MaxRulesCache
	}
	return &RulesService{db: db, table: table, ttl: cacheTTL, now: time.Now}
}

// ValidateRules checks a rule set; the error is a *ValidationError naming the bad field.
func ValidateRules(r Rules) error {
	_, err := Compile(r)
	return err
}

// Get returns the stored rules, or DefaultRules if none were ever stored.
func (s *RulesService) Get(ctx context.Context) (Rules, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: store.Key(pkRules, skRules), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return Rules{}, fmt.Errorf("read identity rules: %w", err)
	}
	if out.Item == nil {
		return DefaultRules(), nil
	}
	var it rulesItem
	if err := attributevalue.UnmarshalMap(out.Item, &it); err != nil {
		return Rules{}, fmt.Errorf("decode identity rules item: %w", err)
	}
	var r Rules
	if err := json.Unmarshal([]byte(it.Data), &r); err != nil {
		return Rules{}, fmt.Errorf("decode identity rules: %w", err)
	}
	return r, nil
}

// Put validates and stores rules; an invalid set returns a *ValidationError and stores nothing.
// Every process picks the new rules up within its cache TTL (this one at once).
func (s *RulesService) Put(ctx context.Context, r Rules) error {
	c, err := Compile(r)
	if err != nil {
		return err
	}
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode identity rules: %w", err)
	}
	item, err := marshal(rulesItem{PK: pkRules, SK: skRules, Data: string(data), UpdatedAt: s.now().UTC().Format(time.RFC3339Nano)})
	if err != nil {
		return err
	}
	if _, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: item}); err != nil {
		return fmt.Errorf("store identity rules: %w", err)
	}
	s.mu.Lock()
	s.cached, s.loadedAt = c, s.now()
	s.mu.Unlock()
	return nil
}

// Compiled returns the rules in force, re-read at most every cache TTL. If a re-read fails, the
// previous rules stay in use.
func (s *RulesService) Compiled(ctx context.Context) (*Compiled, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cached != nil && s.now().Sub(s.loadedAt) < s.ttl {
		return s.cached, nil
	}
	r, err := s.Get(ctx)
	if err == nil {
		var c *Compiled
		if c, err = Compile(r); err == nil {
			s.cached, s.loadedAt = c, s.now()
			return c, nil
		}
	}
	if s.cached != nil {
		return s.cached, nil
	}
	return nil, err
}
