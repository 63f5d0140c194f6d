package source_test

import (
	"context"
	"errors"
	"testing"

	"github.com/serverless-cdp/cdp/internal/source"
	"sync"
	"time"
)

// clock is a settable clock for grace periods.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func mustResolve(t *testing.T, r source.Resolver, key string) source.Source {
	t.Helper()
	s, err := r.ResolveWriteKey(context.Background(), key)
	if err != nil {
		t.Fatalf("resolve %q: %v", key, err)
	}
	return s
}

func mustNotResolve(t *testing.T, r source.Resolver, key string) {
	t.Helper()
	s, err := r.ResolveWriteKey(context.Background(), key)
	if !errors.Is(err, source.ErrNotFound) {
		t.Fatalf("resolve %q: got %+v, %v; want ErrNotFound", key, s, err)
	}
}
