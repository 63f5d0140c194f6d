//go:build integration

package source_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/serverless-cdp/cdp/internal/emulator/testenv"
	"github.com/serverless-cdp/cdp/internal/source"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// countingDB counts GetItem calls, to prove the hot path reads once.
type countingDB struct {
	*dynamodb.Client
	gets atomic.Int64
}

func (c *countingDB) GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	c.gets.Add(1)
	return c.Client.GetItem(ctx, in, optFns...)
}

type fixture struct {
	db    *countingDB
	raw   *dynamodb.Client
	table string
	clock *clock
	repo  *source.Repository
}

func setup(t *testing.T) fixture {
	t.Helper()
	c := testenv.Clients(t)
	table := testenv.Table(t, c.DynamoDB)
	clk := &clock{t: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	db := &countingDB{Client: c.DynamoDB}
	return fixture{db: db, raw: c.DynamoDB, table: table, clock: clk,
		repo: source.NewRepository(db, table, source.WithClock(clk.Now))}
}

func (f fixture) scan(t *testing.T) []map[string]types.AttributeValue {
	t.Helper()
	out, err := f.raw.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(f.table), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	return out.Items
}

func TestCreateGetListResolve(t *testing.T) {
	f := setup(t)
	ctx := context.Background()

	web, webKey, err := f.repo.Create(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(web.ID, "src_") || web.Name != "web" || !web.Enabled || web.CreatedAt.IsZero() || len(web.WriteKeys) != 1 {
		t.Fatalf("created source: %+v", web)
	}
	if len(webKey) != 32 {
		t.Fatalf("write key %q: want 32 characters", webKey)
	}
	f.clock.Add(time.Second)
	ios, iosKey, err := f.repo.Create(ctx, "ios app")
	if err != nil {
		t.Fatal(err)
	}
	if webKey == iosKey || web.ID == ios.ID {
		t.Fatal("keys or ids repeat")
	}

	got, err := f.repo.Get(ctx, web.ID)
	if err != nil || got.Name != "web" || !got.CreatedAt.Equal(web.CreatedAt) {
		t.Fatalf("get: %+v, %v", got, err)
	}
	if _, err := f.repo.Get(ctx, "src_nope"); !errors.Is(err, source.ErrNotFound) {
		t.Fatalf("get unknown: %v", err)
	}
	byName, err := f.repo.GetByName(ctx, "ios app")
	if err != nil || byName.ID != ios.ID {
		t.Fatalf("get by name: %+v, %v", byName, err)
	}

	list, err := f.repo.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != web.ID || list[1].ID != ios.ID {
		t.Fatalf("list: %+v", list)
	}

	before := f.db.gets.Load()
	s := mustResolve(t, f.repo, webKey)
	if n := f.db.gets.Load() - before; n != 1 {
		t.Fatalf("ResolveWriteKey made %d GetItem calls, want 1", n)
	}
	if s.ID != web.ID || s.Name != "web" || !s.Enabled {
		t.Fatalf("resolved: %+v", s)
	}
	if mustResolve(t, f.repo, iosKey).ID != ios.ID {
		t.Fatal("ios key resolves to the wrong source")
	}
	mustNotResolve(t, f.repo, "not-a-key")
	mustNotResolve(t, f.repo, "")
	mustNotResolve(t, f.repo, strings.Repeat("k", 10000))

	// Name rules: unique, validated; a rejected create writes nothing.
	if _, _, err := f.repo.Create(ctx, "web"); !errors.Is(err, source.ErrNameTaken) {
		t.Fatalf("duplicate name: %v", err)
	}
	for _, bad := range []string{"", " web", "web ", "a/b", "na#me", strings.Repeat("x", 101), "ünïcode"} {
		if _, _, err := f.repo.Create(ctx, bad); !errors.Is(err, source.ErrInvalid) {
			t.Errorf("name %q: %v, want ErrInvalid", bad, err)
		}
	}
	if n := len(f.scan(t)); n != 6 { // 2 × (source, name, key)
		t.Fatalf("table has %d items after rejected creates, want 6", n)
	}
}

// TestKeysStoredHashed: no item holds a plaintext key, whatever operations made it.
func TestKeysStoredHashed(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	s, k1, err := f.repo.Create(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	_, k2, err := f.repo.RotateKey(ctx, s.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	const devKey = "dev-write-key-0123456789"
	if _, err := f.repo.EnsureSource(ctx, "dev", devKey); err != nil {
		t.Fatal(err)
	}
	if _, err := f.repo.SetEnabled(ctx, s.ID, false); err != nil {
		t.Fatal(err)
	}
	items := f.scan(t)
	if len(items) == 0 {
		t.Fatal("empty table")
	}
	for _, item := range items {
		for _, key := range []string{k1, k2, devKey} {
			if containsString(item, key) {
				t.Fatalf("plaintext key %q stored in item %v", key, item)
			}
		}
	}
	mustResolve(t, f.repo, k1)
	mustResolve(t, f.repo, k2)
	mustResolve(t, f.repo, devKey)
}

func containsString(av any, s string) bool {
	switch v := av.(type) {
	case map[string]types.AttributeValue:
		for k, x := range v {
			if strings.Contains(k, s) || containsString(x, s) {
				return true
			}
		}
	case *types.AttributeValueMemberS:
		return strings.Contains(v.Value, s)
	case *types.AttributeValueMemberM:
		return containsString(v.Value, s)
	case *types.AttributeValueMemberL:
		for _, x := range v.Value {
			if containsString(x, s) {
				return true
			}
		}
	case *types.AttributeValueMemberSS:
		for _, x := range v.Value {
			if strings.Contains(x, s) {
				return true
			}
		}
	case *types.AttributeValueMemberB:
		return strings.Contains(string(v.Value), s)
	}
	return false
}

func TestDisableEnable(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	s, key, err := f.repo.Create(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Add(time.Minute)
	d, err := f.repo.SetEnabled(ctx, s.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	if d.Enabled || !d.UpdatedAt.After(s.UpdatedAt) {
		t.Fatalf("disabled: %+v", d)
	}
	if got, _ := f.repo.Get(ctx, s.ID); got.Enabled {
		t.Fatal("stored source still enabled")
	}
	if r := mustResolve(t, f.repo, key); r.Enabled || r.ID != s.ID {
		t.Fatalf("resolved after disable: %+v", r)
	}
	// Idempotent: disabling again changes nothing (not even updatedAt).
	f.clock.Add(time.Minute)
	again, err := f.repo.SetEnabled(ctx, s.ID, false)
	if err != nil || !again.UpdatedAt.Equal(d.UpdatedAt) {
		t.Fatalf("disable twice: %+v, %v", again, err)
	}
	e, err := f.repo.SetEnabled(ctx, s.ID, true)
	if err != nil || !e.Enabled {
		t.Fatalf("enable: %+v, %v", e, err)
	}
	if r := mustResolve(t, f.repo, key); !r.Enabled {
		t.Fatal("key still disabled after enable")
	}
	if _, err := f.repo.SetEnabled(ctx, "src_missing", true); !errors.Is(err, source.ErrNotFound) {
		t.Fatalf("enable unknown: %v", err)
	}
}

// TestConcurrentToggles: parallel enable/disable calls leave the key copies agreeing with the
// source (the transaction and version check keep them consistent).
func TestConcurrentToggles(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	s, key, err := f.repo.Create(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	_, key2, err := f.repo.RotateKey(ctx, s.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 3 {
				if _, err := f.repo.SetEnabled(ctx, s.ID, (i+j)%2 == 0); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, source.ErrConflict) { // giving up after retries is allowed, corrupting is not
			t.Fatal(err)
		}
	}
	got, err := f.repo.Get(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{key, key2} {
		if r := mustResolve(t, f.repo, k); r.Enabled != got.Enabled {
			t.Fatalf("key copy enabled=%v, source enabled=%v", r.Enabled, got.Enabled)
		}
	}
}

func TestRotateImmediate(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	s, old, err := f.repo.Create(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	rs, fresh, err := f.repo.RotateKey(ctx, s.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if fresh == old || len(rs.WriteKeys) != 1 || rs.WriteKeys[0].ExpiresAt != nil {
		t.Fatalf("rotated: %+v", rs)
	}
	mustNotResolve(t, f.repo, old)
	if mustResolve(t, f.repo, fresh).ID != s.ID {
		t.Fatal("new key resolves elsewhere")
	}
	if n := len(f.scan(t)); n != 3 {
		t.Fatalf("%d items after rotation, want 3 (old key item deleted)", n)
	}
	if _, _, err := f.repo.RotateKey(ctx, s.ID, -time.Second); !errors.Is(err, source.ErrInvalid) {
		t.Fatalf("negative grace: %v", err)
	}
	if _, _, err := f.repo.RotateKey(ctx, s.ID, 8*24*time.Hour); !errors.Is(err, source.ErrInvalid) {
		t.Fatalf("grace too long: %v", err)
	}
	if _, _, err := f.repo.RotateKey(ctx, "src_missing", 0); !errors.Is(err, source.ErrNotFound) {
		t.Fatalf("rotate unknown: %v", err)
	}
}

func TestRotateGracePeriod(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	s, k1, err := f.repo.Create(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	rs, k2, err := f.repo.RotateKey(ctx, s.ID, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs.WriteKeys) != 2 || rs.WriteKeys[0].ExpiresAt != nil || rs.WriteKeys[1].ExpiresAt == nil ||
		!rs.WriteKeys[1].ExpiresAt.Equal(f.clock.Now().Add(time.Minute)) {
		t.Fatalf("keys after grace rotation: %+v", rs.WriteKeys)
	}
	mustResolve(t, f.repo, k1)
	mustResolve(t, f.repo, k2)

	// During the grace period the old key follows the source's state.
	f.clock.Add(30 * time.Second)
	if _, err := f.repo.SetEnabled(ctx, s.ID, false); err != nil {
		t.Fatal(err)
	}
	if mustResolve(t, f.repo, k1).Enabled {
		t.Fatal("old key still enabled after disable")
	}
	if _, err := f.repo.SetEnabled(ctx, s.ID, true); err != nil {
		t.Fatal(err)
	}

	// A second rotation with a longer grace does not extend k1's expiry; k2 gets the new one.
	_, k3, err := f.repo.RotateKey(ctx, s.ID, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Add(30 * time.Second) // k1's minute is over
	mustNotResolve(t, f.repo, k1)
	mustResolve(t, f.repo, k2)
	mustResolve(t, f.repo, k3)
	got, _ := f.repo.Get(ctx, s.ID)
	if len(got.WriteKeys) != 2 {
		t.Fatalf("live keys: %+v", got.WriteKeys)
	}

	// The next change cleans the expired key's item up.
	f.clock.Add(10 * time.Minute)
	mustNotResolve(t, f.repo, k2)
	if _, err := f.repo.SetEnabled(ctx, s.ID, false); err != nil {
		t.Fatal(err)
	}
	if n := len(f.scan(t)); n != 3 {
		t.Fatalf("%d items, want 3 (expired key items deleted)", n)
	}
	// Rotating with no grace ends every previous key at once.
	f.clock.Add(time.Second)
	if _, _, err := f.repo.RotateKey(ctx, s.ID, time.Hour); err != nil {
		t.Fatal(err)
	}
	_, k5, err := f.repo.RotateKey(ctx, s.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	mustNotResolve(t, f.repo, k3)
	if r := mustResolve(t, f.repo, k5); r.Enabled {
		t.Fatal("key of a disabled source resolves enabled")
	}
}

func TestTooManyGraceKeys(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	s, _, err := f.repo.Create(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < source.MaxActiveKeys; i++ {
		if _, _, err := f.repo.RotateKey(ctx, s.ID, time.Hour); err != nil {
			t.Fatalf("rotation %d: %v", i, err)
		}
	}
	if _, _, err := f.repo.RotateKey(ctx, s.ID, time.Hour); !errors.Is(err, source.ErrInvalid) {
		t.Fatalf("rotation beyond %d keys: %v", source.MaxActiveKeys, err)
	}
	if _, _, err := f.repo.RotateKey(ctx, s.ID, 0); err != nil {
		t.Fatalf("rotation without grace must always work: %v", err)
	}
}

func TestEnsureSource(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	const devKey = "dev-write-key"
	s, err := f.repo.EnsureSource(ctx, "dev", devKey)
	if err != nil {
		t.Fatal(err)
	}
	again, err := f.repo.EnsureSource(ctx, "dev", devKey)
	if err != nil || again.ID != s.ID {
		t.Fatalf("second ensure: %+v, %v", again, err)
	}
	if n := len(f.scan(t)); n != 3 {
		t.Fatalf("%d items after two ensures, want 3", n)
	}
	if mustResolve(t, f.repo, devKey).ID != s.ID {
		t.Fatal("dev key resolves elsewhere")
	}

	// After a rotation the dev key is gone; ensuring it adds it back to the same source.
	if _, _, err := f.repo.RotateKey(ctx, s.ID, 0); err != nil {
		t.Fatal(err)
	}
	mustNotResolve(t, f.repo, devKey)
	back, err := f.repo.EnsureSource(ctx, "dev", devKey)
	if err != nil || back.ID != s.ID || len(back.WriteKeys) != 2 {
		t.Fatalf("ensure after rotation: %+v, %v", back, err)
	}
	mustResolve(t, f.repo, devKey)

	// The key of another source cannot be claimed.
	if _, err := f.repo.EnsureSource(ctx, "other", devKey); !errors.Is(err, source.ErrConflict) {
		t.Fatalf("ensure with another source's key: %v", err)
	}
	for _, bad := range []string{"", "a:b", "with space", strings.Repeat("k", 300)} {
		if _, err := f.repo.EnsureSource(ctx, "dev2", bad); !errors.Is(err, source.ErrInvalid) {
			t.Errorf("key %q: %v, want ErrInvalid", bad, err)
		}
	}

	// Concurrent ensures of one new source create it once.
	var wg sync.WaitGroup
	ids := make([]string, 6)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := f.repo.EnsureSource(ctx, "server", "server-key-1")
			if err != nil {
				t.Error(err)
			}
			ids[i] = s.ID
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("concurrent ensures gave different sources: %v", ids)
		}
	}
}

func TestDelete(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	s, k1, err := f.repo.Create(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	_, k2, err := f.repo.RotateKey(ctx, s.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.repo.Delete(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	if n := len(f.scan(t)); n != 0 {
		t.Fatalf("%d items left after delete", n)
	}
	mustNotResolve(t, f.repo, k1)
	mustNotResolve(t, f.repo, k2)
	if err := f.repo.Delete(ctx, s.ID); !errors.Is(err, source.ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
	// The name is free again.
	if _, _, err := f.repo.Create(ctx, "web"); err != nil {
		t.Fatal(fmt.Errorf("recreate after delete: %w", err))
	}
}
