// Package backoff is the one retry policy of the project: exponential backoff with jitter, a
// bounded number of attempts, and waits that end when the context does.
package backoff

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// Policy bounds retries: Attempts in all (the first try included), waits from Base doubling up
// to Max, each drawn in [d/2, d] so that many retrying invocations do not stampede.
type Policy struct {
	Attempts int
	Base     time.Duration
	Max      time.Duration
}

// Delay is the wait before retry number attempt (1 = the first retry).
func (p Policy) Delay(attempt int) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	d := p.Base
	for i := 1; i < attempt && d < p.Max; i++ {
		d *= 2
	}
	if p.Max > 0 && d > p.Max {
		d = p.Max
	}
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d/2+1)
}

// Sleep waits d or until ctx is done, whichever comes first, and returns ctx's error then.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent marks an error that retrying cannot fix: Retry returns it at once.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanent{err}
}

// Retry calls fn until it succeeds, returns a Permanent error, the attempts are spent or ctx is
// done. It returns fn's last error (unwrapped from Permanent), or ctx's error if ctx ended a wait.
func Retry(ctx context.Context, p Policy, fn func(context.Context) error) error {
	attempts := max(p.Attempts, 1)
	var err error
	for i := 0; i < attempts; i++ {
		if i > 0 {
			if werr := Sleep(ctx, p.Delay(i)); werr != nil {
				return errors.Join(err, werr)
			}
		}
		err = fn(ctx)
		var perm permanent
		if err == nil {
			return nil
		}
		if errors.As(err, &perm) {
			return perm.err
		}
	}
	return err
}
