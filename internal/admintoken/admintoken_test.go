//go:build integration

package admintoken_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/serverless-cdp/cdp/internal/admintoken"
	"github.com/serverless-cdp/cdp/internal/emulator/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestTokens(t *testing.T) {
	c := testenv.Clients(t)
	table := testenv.Table(t, c.DynamoDB)
	s := admintoken.NewStore(c.DynamoDB, table)
	ctx := context.Background()

	t1, plain1, err := s.Create(ctx, "ops laptop")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(plain1, admintoken.Prefix) || len(plain1) != len(admintoken.Prefix)+40 {
		t.Fatalf("token %q", plain1)
	}
	t2, plain2, err := s.Create(ctx, "ci")
	if err != nil {
		t.Fatal(err)
	}
	if plain1 == plain2 || t1.ID == t2.ID {
		t.Fatal("tokens repeat")
	}

	got, err := s.Verify(ctx, plain1)
	if err != nil || got.ID != t1.ID || got.Name != "ops laptop" {
		t.Fatalf("verify: %+v, %v", got, err)
	}
	for _, bad := range []string{"", "cdpat_wrong", plain1 + "x", strings.Repeat("a", 1000)} {
		if _, err := s.Verify(ctx, bad); !errors.Is(err, admintoken.ErrNotFound) {
			t.Errorf("verify %q: %v, want ErrNotFound", bad, err)
		}
	}

	list, err := s.List(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("list: %+v, %v", list, err)
	}

	// Only hashes are stored.
	scan, err := c.DynamoDB.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(table)})
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range scan.Items {
		for _, av := range it {
			if v, ok := av.(*types.AttributeValueMemberS); ok && (strings.Contains(v.Value, plain1) || strings.Contains(v.Value, plain2)) {
				t.Fatalf("plaintext token stored: %v", it)
			}
		}
	}

	if err := s.Revoke(ctx, t1.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verify(ctx, plain1); !errors.Is(err, admintoken.ErrNotFound) {
		t.Fatalf("revoked token still verifies: %v", err)
	}
	if _, err := s.Verify(ctx, plain2); err != nil {
		t.Fatalf("other token broke: %v", err)
	}
	if err := s.Revoke(ctx, t1.ID); !errors.Is(err, admintoken.ErrNotFound) {
		t.Fatalf("revoke twice: %v", err)
	}

	if _, _, err := s.Create(ctx, " "); !errors.Is(err, admintoken.ErrInvalid) {
		t.Fatalf("blank name: %v", err)
	}
}

func TestEnsure(t *testing.T) {
	c := testenv.Clients(t)
	table := testenv.Table(t, c.DynamoDB)
	s := admintoken.NewStore(c.DynamoDB, table)
	ctx := context.Background()

	a, err := s.Ensure(ctx, "dev-admin-token")
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Ensure(ctx, "dev-admin-token")
	if err != nil || b.ID != a.ID {
		t.Fatalf("second ensure: %+v, %v (first %+v)", b, err, a)
	}
	if v, err := s.Verify(ctx, "dev-admin-token"); err != nil || v.ID != a.ID {
		t.Fatalf("verify: %+v, %v", v, err)
	}
	if list, _ := s.List(ctx); len(list) != 1 {
		t.Fatalf("tokens after two ensures: %+v", list)
	}
	for _, bad := range []string{"", "short", "has space in it"} {
		if _, err := s.Ensure(ctx, bad); !errors.Is(err, admintoken.ErrInvalid) {
			t.Errorf("ensure %q: %v", bad, err)
		}
	}
}

// TestVerifyMemo: within a WithMemo context a token is read once (a revocation meanwhile is
// seen by the next context, not this one); an unknown token is remembered too.
func TestVerifyMemo(t *testing.T) {
	c := testenv.Clients(t)
	table := testenv.Table(t, c.DynamoDB)
	s := admintoken.NewStore(c.DynamoDB, table)
	bg := context.Background()
	tok, plain, err := s.Create(bg, "console")
	if err != nil {
		t.Fatal(err)
	}
	page := admintoken.WithMemo(bg)
	if got, err := s.Verify(page, plain); err != nil || got.ID != tok.ID {
		t.Fatalf("first check: %+v %v", got, err)
	}
	if err := s.Revoke(bg, tok.ID); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Verify(page, plain); err != nil || got.ID != tok.ID {
		t.Fatalf("the same page's second check read again: %+v %v", got, err)
	}
	if _, err := s.Verify(admintoken.WithMemo(bg), plain); !errors.Is(err, admintoken.ErrNotFound) {
		t.Fatalf("the next page still accepts the revoked token: %v", err)
	}
	if _, err := s.Verify(bg, plain); !errors.Is(err, admintoken.ErrNotFound) {
		t.Fatalf("without a memo: %v", err)
	}
}
