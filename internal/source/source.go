// Package source manages sources: the apps and systems that send events, each authenticated by
// write keys. Write keys are stored only as SHA-256 hashes.
//
// Items it owns in the shared table:
//
//	pk=SOURCES             sk=SOURCE#<id>   the source: name, enabled, createdAt, updatedAt,
//	                                        version (optimistic concurrency), keys (hash → metadata)
//	pk=SOURCES             sk=NAME#<name>   name reservation: names are unique; sourceId
//	pk=WRITEKEY#<sha256>   sk=WRITEKEY      one write key: sourceId, sourceName, enabled (copied
//	                                        from the source), expiresAtMs and ttl during a grace period
//
// The ingest hot path resolves a key with a single GetItem on its WRITEKEY item, which carries a
// copy of what ingest needs (source id, name, enabled). Every change to a source updates the source
// item and all of its key items in one transaction, conditioned on the source's version, so the
// copies never disagree with the source. Sources are few, so they share one partition and are
// listed with a strongly consistent Query.
package source

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/serverless-cdp/cdp/internal/apitypes"
	"github.com/serverless-cdp/cdp/internal/secret"
)

// Errors returned by the repository. Validation errors wrap ErrInvalid and say what is wrong.
var (
	ErrNotFound  = errors.New("source not found")
	ErrNameTaken = errors.New("source name already in use")
	ErrInvalid   = apitypes.ErrInvalidSource
	ErrConflict  = errors.New("source changed concurrently, try again")
)

// Limits.
const (
	MaxNameLength = apitypes.MaxSourceNameLength
	// MaxActiveKeys bounds how many keys (the current one plus those in a grace period) a source
	// may hold, so every change fits in one DynamoDB transaction (100 items).
	MaxActiveKeys = 10
	// MaxGracePeriod is the longest an old key keeps working after a rotation.
	MaxGracePeriod = 7 * 24 * time.Hour
	// maxKeyLength bounds what is even looked up: longer strings are not keys.
	maxKeyLength = 256
	// writeKeyLength is the length of generated write keys (alphanumeric, ~190 bits).
	writeKeyLength = 32
)

// Source is an app or system that sends events; KeyInfo describes one of its write keys without
// revealing it. Both are wire types of the admin API, shared with the cdp CLI (package apitypes).
type (
	Source  = apitypes.Source
	KeyInfo = apitypes.KeyInfo
)

// ValidateName checks a source name: 1 to 100 characters, letters, digits, space, '.', '_' and
// '-', starting with a letter or digit and not ending with a space.
func ValidateName(name string) error { return apitypes.ValidateSourceName(name) }

// validateGivenKey checks a caller-chosen key (EnsureSource): it must be usable as the user name
// of HTTP Basic auth.
func validateGivenKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: write key is required", ErrInvalid)
	}
	if len(key) > maxKeyLength {
		return fmt.Errorf("%w: write key is longer than %d characters", ErrInvalid, maxKeyLength)
	}
	for _, r := range key {
		if r <= ' ' || r == ':' || r == 0x7f {
			return fmt.Errorf("%w: write key may not contain spaces, control characters or ':'", ErrInvalid)
		}
	}
	return nil
}

// hashKey returns the hex SHA-256 of a write key. A fast, unsalted hash is the right choice here:
// generated keys carry ~190 bits of randomness (32 random alphanumeric characters), so brute force
// against a leaked hash is hopeless whatever the hash speed, and a deterministic hash lets the hot
// path find a key with one GetItem. (Slow password hashes exist for low-entropy human secrets.)
func hashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

func keyID(hash string) string { return hash[:12] }

// NewWriteKey returns a fresh random write key (32 alphanumeric characters, like Segment's).
func NewWriteKey() string { return secret.String(secret.Alphanumeric, writeKeyLength) }

func newID() string { return "src_" + secret.String(secret.LowerDigits, 20) }
