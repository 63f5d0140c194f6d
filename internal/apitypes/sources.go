package apitypes

import (
	"errors"
	"fmt"
	"regexp"
	"time"
)

// ErrInvalidSource is wrapped by every source validation error (source.ErrInvalid).
var ErrInvalidSource = errors.New("invalid source request")

// MaxSourceNameLength bounds a source's name.
const MaxSourceNameLength = 100

// Source is an app or system that sends events (package source stores them).
type Source struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Enabled   bool      `json:"enabled"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
	// WriteKeys describes the keys that currently work (never the keys themselves).
	WriteKeys []KeyInfo `json:"writeKeys"`
}

// KeyInfo describes one write key without revealing it.
type KeyInfo struct {
	// ID is the first 12 hex digits of the key's SHA-256: enough to tell keys apart, useless to
	// authenticate with.
	ID        string     `json:"id"`
	CreatedAt time.Time  `json:"createdAt"`
	ExpiresAt *time.Time `json:"expiresAt,omitempty"` // set while in a grace period after a rotation
}

var sourceNameRE = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9 ._-]*[A-Za-z0-9._-])?$`)

// ValidateSourceName checks a source name: 1 to 100 characters, letters, digits, space, '.',
// '_' and '-', starting with a letter or digit and not ending with a space. The error wraps
// ErrInvalidSource.
func ValidateSourceName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: name is required", ErrInvalidSource)
	}
	if len(name) > MaxSourceNameLength {
		return fmt.Errorf("%w: name is longer than %d characters", ErrInvalidSource, MaxSourceNameLength)
	}
	if !sourceNameRE.MatchString(name) {
		return fmt.Errorf("%w: name %q may contain only letters, digits, space, '.', '_' and '-', and must start with a letter or digit", ErrInvalidSource, name)
	}
	return nil
}
