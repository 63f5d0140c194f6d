// Package admintoken manages the bearer tokens of the admin API. Tokens are stored only as
// SHA-256 hashes: generated tokens carry ~238 bits of randomness (40 random alphanumeric
// characters), so a fast hash is safe against brute force and lets Verify find a token with one
// GetItem. The first token on AWS is created with the operator's AWS credentials
// (`cdp admin-token create --table NAME`), talking to DynamoDB directly.
//
// Items it owns in the shared table:
//
//	pk=ADMINTOKEN#<sha256>  sk=ADMINTOKEN  gsi1pk=ADMINTOKENS  gsi1sk=<id>
//	    one token: id, name, createdAt (listed and revoked by id through gsi1)
package admintoken

import (
	"context"

	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/serverless-cdp/cdp/internal/secret"
	"github.com/serverless-cdp/cdp/internal/store"
)

// Errors.
var (
	ErrNotFound = errors.New("admin token not found")
	ErrInvalid  = errors.New("invalid admin token request")
)

const (
	pkPrefix   = "ADMINTOKEN#"
	skValue    = "ADMINTOKEN"
	gsiPK      = "ADMINTOKENS"
	tokenChars = 40
	maxToken   = 256
	maxName    = 100
	// Prefix starts every generated token, so a leaked one is easy to recognise (secret scanners).
	Prefix = "cdpat_"
	// EnsureName names tokens made by Ensure.
	EnsureName = "local development"
)

// Token describes an admin token without revealing it.
type Token struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"createdAt"`
}

// DynamoDB is the DynamoDB client the store uses (the one interface, store.Client).
type DynamoDB = store.Client

// Store keeps admin tokens in the shared table.
type Store struct {
	db    DynamoDB
	table string
	now   func() time.Time
}

// NewStore returns a token store over the named table.
func NewStore(db DynamoDB, table string) *Store {
	return &Store{db: db, table: table, now: time.Now}
}

type item struct {
	PK        string `dynamodbav:"pk"`
	SK        string `dynamodbav:"sk"`
	GSI1PK    string `dynamodbav:"gsi1pk"`
	GSI1SK    string `dynamodbav:"gsi1sk"`
	ID        string `dynamodbav:"id"`
	Name      string `dynamodbav:"name"`
	CreatedAt string `dynamodbav:"createdAt"`
}

func (it item) token() Token {
	t, _ := time.Parse(time.RFC3339Nano, it.CreatedAt)
	return Token{ID: it.ID, Name: it.Name, CreatedAt: t}
}

func hash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func key(h string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		store.PK: &types.AttributeValueMemberS{Value: pkPrefix + h},
		store.SK: &types.AttributeValueMemberS{Value: skValue},
	}
}

func validateName(name string) error {
	if strings.TrimSpace(name) == "" {
		return fmt.Errorf("%w: name is required", ErrInvalid)
	}
	if len(name) > maxName {
		return fmt.Errorf("%w: name is longer than %d characters", ErrInvalid, maxName)
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("%w: name contains a control character", ErrInvalid)
		}
	}
	return nil
}

// Create makes a new token and returns it in plain text; only its hash is stored.
func (s *Store) Create(ctx context.Context, name string) (Token, string, error) {
	if err := validateName(name); err != nil {
		return Token{}, "", err
	}
	plain := Prefix + secret.String(secret.Alphanumeric, tokenChars)
	t, _, err := s.put(ctx, name, plain)
	if err != nil {
		return Token{}, "", err
	}
	return t, plain, nil
}

// put stores a token unless it exists; it reports whether it created it.
func (s *Store) put(ctx context.Context, name, plain string) (Token, bool, error) {
	id := "tok_" + strings.ToLower(secret.String(secret.Alphanumeric, 20))
	h := hash(plain)
	it := item{PK: pkPrefix + h, SK: skValue, GSI1PK: gsiPK, GSI1SK: id, ID: id, Name: name,
		CreatedAt: s.now().UTC().Format(time.RFC3339Nano)}
	av, err := attributevalue.MarshalMap(it)
	if err != nil {
		return Token{}, false, fmt.Errorf("marshal admin token: %w", err)
	}
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.table, Item: av,
		ConditionExpression: aws.String("attribute_not_exists(pk)")})
	if store.IsConditionFailed(err) {
		return Token{}, false, nil
	}
	if err != nil {
		return Token{}, false, fmt.Errorf("store admin token: %w", err)
	}
	return it.token(), true, nil
}

// memo remembers Verify's answers within one context (WithMemo).
type memo struct {
	mu      sync.Mutex
	answers map[string]memoAnswer
}

type memoAnswer struct {
	tok Token
	err error
}

type memoKey struct{}

// WithMemo returns a context under which Verify reads each token once and remembers the answer
// (a valid token, or ErrNotFound): the console makes several in-process API calls to serve one
// page, each of which checks the same token. Use it for one request only, so a revocation still
// takes effect with the next request.
func WithMemo(ctx context.Context) context.Context {
	return context.WithValue(ctx, memoKey{}, &memo{answers: map[string]memoAnswer{}})
}

// Verify returns the token's description, or ErrNotFound for an unknown or revoked token. It
// reads consistently, so a revocation takes effect at once (within a WithMemo context, once per
// context).
func (s *Store) Verify(ctx context.Context, token string) (Token, error) {
	if token == "" || len(token) > maxToken {
		return Token{}, ErrNotFound
	}
	m, _ := ctx.Value(memoKey{}).(*memo)
	if m == nil {
		return s.verify(ctx, token)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if a, ok := m.answers[token]; ok {
		return a.tok, a.err
	}
	tok, err := s.verify(ctx, token)
	if err == nil || errors.Is(err, ErrNotFound) {
		m.answers[token] = memoAnswer{tok, err}
	}
	return tok, err
}

func (s *Store) verify(ctx context.Context, token string) (Token, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: key(hash(token)), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return Token{}, fmt.Errorf("verify admin token: %w", err)
	}
	if len(out.Item) == 0 {
		return Token{}, ErrNotFound
	}
	var it item
	if err := attributevalue.UnmarshalMap(out.Item, &it); err != nil {
		return Token{}, fmt.Errorf("decode admin token: %w", err)
	}
	return it.token(), nil
}

// Ensure makes sure the given plaintext token works (for the local runner's development token);
// calling it again changes nothing.
func (s *Store) Ensure(ctx context.Context, token string) (Token, error) {
	if len(token) < 8 || len(token) > maxToken || strings.ContainsFunc(token, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return Token{}, fmt.Errorf("%w: token must be 8 to %d characters without spaces", ErrInvalid, maxToken)
	}
	for range 3 {
		if t, err := s.Verify(ctx, token); err == nil {
			return t, nil
		} else if !errors.Is(err, ErrNotFound) {
			return Token{}, err
		}
		t, created, err := s.put(ctx, EnsureName, token)
		if err != nil {
			return Token{}, err
		}
		if created {
			return t, nil
		}
		// Created concurrently: verify again.
	}
	return Token{}, fmt.Errorf("ensure admin token: it keeps changing")
}

// List returns every token, oldest first. It reads the index, which may lag a just-made change
// by a moment.
func (s *Store) List(ctx context.Context) ([]Token, error) {
	out := []Token{}
	pages := dynamodb.NewQueryPaginator(s.db, &dynamodb.QueryInput{
		TableName:                 &s.table,
		IndexName:                 aws.String(store.GSI1),
		KeyConditionExpression:    aws.String("gsi1pk = :p"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":p": &types.AttributeValueMemberS{Value: gsiPK}},
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list admin tokens: %w", err)
		}
		for _, av := range page.Items {
			var it item
			if err := attributevalue.UnmarshalMap(av, &it); err != nil {
				return nil, fmt.Errorf("decode admin token: %w", err)
			}
			out = append(out, it.token())
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

// Revoke deletes the token with this id; it stops working at once.
func (s *Store) Revoke(ctx context.Context, id string) error {
	if id == "" {
		return ErrNotFound
	}
	page, err := s.db.Query(ctx, &dynamodb.QueryInput{
		TableName:              &s.table,
		IndexName:              aws.String(store.GSI1),
		KeyConditionExpression: aws.String("gsi1pk = :p AND gsi1sk = :id"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":p":  &types.AttributeValueMemberS{Value: gsiPK},
			":id": &types.AttributeValueMemberS{Value: id},
		},
	})
	if err != nil {
		return fmt.Errorf("find admin token %s: %w", id, err)
	}
	if len(page.Items) == 0 {
		return ErrNotFound
	}
	for _, av := range page.Items {
		_, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &s.table,
			Key: map[string]types.AttributeValue{store.PK: av[store.PK], store.SK: av[store.SK]}})
		if err != nil {
			return fmt.Errorf("revoke admin token %s: %w", id, err)
		}
	}
	return nil
}
