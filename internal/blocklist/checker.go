package blocklist

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// CheckerOptions configure a Checker.
type CheckerOptions struct {
	// Interval is the most often the version is read (default DefaultInterval). Give the
	// store the same value (Options.CheckInterval) so its PropagationDelay matches.
	Interval time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Checker answers whether identifiers are suppressed and profiles erased from a copy of the
// list. It reads the version item at most once per Interval and reloads the list only when
// the version changed: in steady state a check costs no request.
type Checker struct {
	s   Store
	h   Hasher
	opt CheckerOptions

	mu      sync.Mutex
	checked time.Time // when the version was last read successfully
	loaded  bool
	version int64
	snap    Snapshot
}

// NewChecker returns a checker of s hashing with h (the key the store hashes with).
func NewChecker(s Store, h Hasher, opt CheckerOptions) *Checker {
	if opt.Interval <= 0 {
		opt.Interval = DefaultInterval
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &Checker{s: s, h: h, opt: opt}
}

// current returns the snapshot, refreshed first if Interval has passed since the last read of
// the version. A refresh error is returned: the caller must not treat it as "not listed".
func (c *Checker) current(ctx context.Context) (Snapshot, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.opt.Now()
	if c.loaded && now.Sub(c.checked) < c.opt.Interval {
		return c.snap, nil
	}
	v, err := c.s.Version(ctx)
	if err != nil {
		return Snapshot{}, fmt.Errorf("blocklist check: %w", err)
	}
	if !c.loaded || v != c.version {
		snap, err := c.s.Load(ctx)
		if err != nil {
			return Snapshot{}, fmt.Errorf("blocklist check: %w", err)
		}
		c.snap, c.version, c.loaded = snap, v, true
	}
	c.checked = now
	return c.snap, nil
}

// Suppressed reports whether any of the identifiers ("type:value", normalized) is suppressed.
func (c *Checker) Suppressed(ctx context.Context, identifiers []string) (bool, error) {
	snap, err := c.current(ctx)
	if err != nil {
		return false, err
	}
	if len(snap.Identifiers) == 0 {
		return false, nil
	}
	for _, id := range identifiers {
		if snap.Identifiers[c.h.Identifier(id)] {
			return true, nil
		}
	}
	return false, nil
}

// Erased reports whether a profile was erased (its entry not expired yet).
func (c *Checker) Erased(ctx context.Context, profileID string) (bool, error) {
	snap, err := c.current(ctx)
	if err != nil {
		return false, err
	}
	if len(snap.Profiles) == 0 {
		return false, nil
	}
	exp, ok := snap.Profiles[c.h.Profile(profileID)]
	return ok && exp.After(c.opt.Now()), nil
}

// CountDropped counts records of source dropped as suppressed (in the store), so a stage needs
// one dependency for checking and counting.
func (c *Checker) CountDropped(ctx context.Context, source string, n int64) error {
	return c.s.CountDropped(ctx, source, n)
}
