package backoff

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestDelayDoublesWithinBoundsAndJitters(t *testing.T) {
	p := Policy{Base: 100 * time.Millisecond, Max: time.Second}
	for attempt, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond, 5: time.Second, 30: time.Second} {
		for range 50 {
			d := p.Delay(attempt)
			if d < want/2 || d > want {
				t.Fatalf("attempt %d: %v outside [%v, %v]", attempt, d, want/2, want)
			}
		}
	}
	if d := (Policy{}).Delay(3); d != 0 {
		t.Fatalf("zero policy waits %v", d)
	}
}

func TestRetryStopsOnSuccessPermanentOrAttempts(t *testing.T) {
	ctx := context.Background()
	p := Policy{Attempts: 4}
	calls := 0
	err := Retry(ctx, p, func(context.Context) error {
		calls++
		if calls < 3 {
			return errors.New("transient")
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("success after 3: err %v calls %d", err, calls)
	}
	calls = 0
	boom := errors.New("boom")
	err = Retry(ctx, p, func(context.Context) error { calls++; return Permanent(boom) })
	if err != boom || calls != 1 {
		t.Fatalf("permanent: err %v calls %d", err, calls)
	}
	calls = 0
	err = Retry(ctx, p, func(context.Context) error { calls++; return boom })
	if !errors.Is(err, boom) || calls != 4 {
		t.Fatalf("exhausted: err %v calls %d", err, calls)
	}
}

func TestRetryEndsWhenTheContextDoes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err := Retry(ctx, Policy{Attempts: 10, Base: time.Hour, Max: time.Hour}, func(context.Context) error {
		calls++
		cancel()
		return errors.New("transient")
	})
	if !errors.Is(err, context.Canceled) || calls != 1 {
		t.Fatalf("err %v calls %d", err, calls)
	}
}
