package destination

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sort"
	"time"

	"github.com/serverless-cdp/cdp/internal/backoff"
	"github.com/serverless-cdp/cdp/internal/store"
	"github.com/serverless-cdp/cdp/internal/webhook"
)

// Store keeps destinations: the port the Service depends on. The DynamoDB adapter
// (NewDynamoStore) and the in-memory one (NewMemStore) implement it; one conformance suite
// checks both.
type Store interface {
	// Get returns one destination (secret values included) or ErrNotFound.
	Get(ctx context.Context, id string) (Destination, error)
	// List returns every destination, in no particular order.
	List(ctx context.Context) ([]Destination, error)
	// Put writes d. prev is the version it replaces: 0 means d must not exist yet; otherwise
	// the stored version must equal prev. A failed condition is ErrConflict.
	Put(ctx context.Context, d Destination, prev int64) error
	// Delete removes a destination, or returns ErrNotFound.
	Delete(ctx context.Context, id string) error
}

// Service manages destinations. Safe for concurrent use.
type Service struct {
	store  Store
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
func NewService(db store.Client, table string, opts ...Option) *Service {
	return NewServiceWith(NewDynamoStore(db, table), opts...)
}

// NewServiceWith returns a service over any Store (NewMemStore in tests).
func NewServiceWith(st Store, opts ...Option) *Service {
	s := &Service{store: st, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

func hint(secret string) string {
	if len(secret) > 10 {
		return secret[:10] + "…"
	}
	return "…"
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
	if err := s.store.Put(ctx, d, 0); err != nil {
		return Destination{}, "", err
	}
	return d, secret, nil
}

func apply(d *Destination, spec Spec, now time.Time) {
	d.Name, d.URL, d.Signing, d.BatchSize = spec.Name, spec.URL, spec.Signing, spec.BatchSize
	d.TimeoutSeconds, d.Headers, d.Subscriptions = spec.TimeoutSeconds, spec.Headers, spec.Subscriptions
	d.ConsentCategories, d.RequireConsent = spec.ConsentCategories, spec.RequireConsent
	d.Enabled = spec.Enabled == nil || *spec.Enabled
	if d.Enabled {
		d.DisabledReason = ""
	}
	d.UpdatedAt = now
}

// Get returns one destination.
func (s *Service) Get(ctx context.Context, id string) (Destination, error) {
	return s.store.Get(ctx, id)
}

// List returns every destination, by name.
func (s *Service) List(ctx context.Context) ([]Destination, error) {
	out, err := s.store.List(ctx)
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// conflictRetry is how modify retries a write that lost to a concurrent one.
var conflictRetry = backoff.Policy{Attempts: 6, Base: 5 * time.Millisecond, Max: 50 * time.Millisecond}

// modify applies fn to the stored destination with optimistic concurrency, retrying conflicts.
func (s *Service) modify(ctx context.Context, id string, fn func(*Destination) error) (Destination, error) {
	var out Destination
	err := backoff.Retry(ctx, conflictRetry, func(ctx context.Context) error {
		d, err := s.store.Get(ctx, id)
		if err != nil {
			return backoff.Permanent(err)
		}
		prev := d.Version
		if err := fn(&d); err != nil {
			return backoff.Permanent(err)
		}
		d.Version = prev + 1
		d.UpdatedAt = s.now().UTC()
		if err := s.store.Put(ctx, d, prev); err != nil {
			if errors.Is(err, ErrConflict) {
				return err
			}
			return backoff.Permanent(err)
		}
		out = d
		return nil
	})
	return out, err
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
	return s.store.Delete(ctx, id)
}
