// Package app is what every function shares: the configuration read from the environment and
// Start, the body of each functions/<name>/main.go. Each function's wiring lives in its own
// package (internal/app/<name>fn) so a Lambda links and initialises only the stages it uses;
// the local runner (internal/local) calls the same constructors, so what runs locally is wired
// exactly like what runs on Lambda.
package app

import (
	"fmt"
	"log/slog"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/serverless-cdp/cdp/internal/blocklist"
)

// Config is everything the functions read from the environment, read once in main.
type Config struct {
	Table             string        // CDP_TABLE
	EventsStream      string        // CDP_EVENTS_STREAM
	ChangesStream     string        // CDP_CHANGES_STREAM
	ActivationsStream string        // CDP_ACTIVATIONS_STREAM
	AllowedOrigins    []string      // CDP_ALLOWED_ORIGINS, comma-separated; default "*"
	KeyCacheTTL       time.Duration // CDP_KEY_CACHE_SECONDS; write-key lookups cached this long
	TimelineRetention time.Duration // CDP_TIMELINE_RETENTION_DAYS; default 90 days
	SpaceID           string        // CDP_SPACE_ID: the Profile API space and context.personas.space_id
	WebhookTimeout    time.Duration // CDP_WEBHOOK_TIMEOUT_SECONDS (1–30), default 10 s
	// AllowPrivateWebhooks (CDP_ALLOW_PRIVATE_WEBHOOKS) lets destinations target private,
	// loopback and link-local addresses. Off by default; the local runner allows loopback only.
	AllowPrivateWebhooks  bool
	AllowLoopbackWebhooks bool // set by the local runner, never from the environment
	// LegacyDedupe (CDP_LEGACY_DEDUPE) makes identity also read the dedupe markers written
	// before dedupe became per source (MSG#<messageId>). Only an upgraded deployment needs it,
	// for one timeline retention after the upgrade; it costs about 0.5 read unit per event.
	LegacyDedupe bool
	LogLevel     slog.Level // LOG_LEVEL: debug, info, warn, error
	// PrivacyKey keys the hashes of the privacy blocklist and audit log (HMAC-SHA256):
	// CDP_PRIVACY_KEY (at least 32 bytes), or read at start from the Secrets Manager secret
	// named by CDP_PRIVACY_KEY_SECRET (PrivacyKeySecret; how the CDK stack provides it).
	PrivacyKey       []byte
	PrivacyKeySecret string
	// Archive is where the raw event archive is: "s3://<bucket>" from CDP_ARCHIVE_BUCKET (the
	// CDK stack's Firehose writes it), or a folder from CDP_ARCHIVE_DIR (the local runner
	// writes it). Empty: no archive (replay and the identity-rule dry run answer that).
	Archive string
	// ArchiveLag (CDP_ARCHIVE_LAG_SECONDS, 1–86400) is how long after a delete erased the archive
	// an event of the person can still land in it; the delete erases the archive once more
	// after it. 0 (unset): by where the archive is — Firehose's 15-minute buffer and a 5-minute
	// margin for S3, a few seconds for the local writer (privacyfn.ArchiveLag).
	ArchiveLag time.Duration
	// RetrainEvery (CDP_RETRAIN_DAYS, 1–365) is how often the schedule retrains each predictive
	// computed trait; 0 (unset): weekly (segment.DefaultRetrainEvery).
	RetrainEvery time.Duration
	// RescoreEvery (CDP_RESCORE_HOURS, 1–8760) is how often every profile's predictive scores
	// are recomputed with the published model between retrains; 0 (unset): daily.
	RescoreEvery time.Duration
}

// MinPrivacyKeyBytes is the shortest privacy key accepted.
const MinPrivacyKeyBytes = 32

// Hasher is the keyed hasher of the privacy blocklist and audit log.
func (c Config) Hasher() blocklist.Hasher { return blocklist.NewHasher(c.PrivacyKey) }

// SetPrivacyKey checks and sets the privacy key.
func (c *Config) SetPrivacyKey(key string) error {
	if len(key) < MinPrivacyKeyBytes {
		return fmt.Errorf("privacy key: want at least %d bytes, got %d", MinPrivacyKeyBytes, len(key))
	}
	c.PrivacyKey = []byte(key)
	return nil
}

// Defaults are the names the local runner uses.
func Defaults() Config {
	return Config{
		Table: "cdp", EventsStream: "events", ChangesStream: "changes", ActivationsStream: "activations",
		AllowedOrigins: []string{"*"}, KeyCacheTTL: 30 * time.Second, TimelineRetention: 90 * 24 * time.Hour,
		SpaceID: "default", WebhookTimeout: 10 * time.Second, LogLevel: slog.LevelInfo,
	}
}

// FromEnv reads the configuration, starting from Defaults.
func FromEnv() (Config, error) { return FromLookup(os.LookupEnv) }

// FromLookup reads the configuration through lookup (os.LookupEnv, or a map in tests).
func FromLookup(lookup func(string) (string, bool)) (Config, error) {
	c := Defaults()
	env := envReader{lookup: lookup}
	env.str("CDP_TABLE", &c.Table)
	env.str("CDP_EVENTS_STREAM", &c.EventsStream)
	env.str("CDP_CHANGES_STREAM", &c.ChangesStream)
	env.str("CDP_ACTIVATIONS_STREAM", &c.ActivationsStream)
	if v, ok := lookup("CDP_ALLOWED_ORIGINS"); ok && strings.TrimSpace(v) != "" {
		c.AllowedOrigins = strings.Split(v, ",")
	}
	env.duration("CDP_KEY_CACHE_SECONDS", &c.KeyCacheTTL, time.Second, 0, math.MaxInt32, "want a whole number of seconds")
	env.duration("CDP_TIMELINE_RETENTION_DAYS", &c.TimelineRetention, 24*time.Hour, 1, math.MaxInt32, "want a whole number of days ≥ 1")
	env.str("CDP_SPACE_ID", &c.SpaceID)
	env.boolean("CDP_LEGACY_DEDUPE", &c.LegacyDedupe)
	env.duration("CDP_WEBHOOK_TIMEOUT_SECONDS", &c.WebhookTimeout, time.Second, 1, 30, "want 1 to 30")
	env.boolean("CDP_ALLOW_PRIVATE_WEBHOOKS", &c.AllowPrivateWebhooks)
	env.str("CDP_PRIVACY_KEY_SECRET", &c.PrivacyKeySecret)
	env.str("CDP_ARCHIVE_DIR", &c.Archive)
	if v, ok := lookup("CDP_ARCHIVE_BUCKET"); ok && strings.TrimSpace(v) != "" {
		c.Archive = "s3://" + strings.TrimSpace(v)
	}
	env.duration("CDP_ARCHIVE_LAG_SECONDS", &c.ArchiveLag, time.Second, 1, 86400, "want 1 to 86400 seconds")
	env.duration("CDP_RETRAIN_DAYS", &c.RetrainEvery, 24*time.Hour, 1, 365, "want 1 to 365 days")
	env.duration("CDP_RESCORE_HOURS", &c.RescoreEvery, time.Hour, 1, 8760, "want 1 to 8760 hours")
	if v, ok := lookup("CDP_PRIVACY_KEY"); ok && v != "" && env.err == nil {
		if err := c.SetPrivacyKey(v); err != nil {
			env.err = fmt.Errorf("CDP_PRIVACY_KEY: %w", err)
		}
	}
	if v, ok := lookup("LOG_LEVEL"); ok && v != "" && env.err == nil {
		if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
			env.err = fmt.Errorf("LOG_LEVEL=%q: %w", v, err)
		}
	}
	if env.err != nil {
		return Config{}, env.err
	}
	return c, nil
}

// envReader reads typed variables and keeps the first error.
type envReader struct {
	lookup func(string) (string, bool)
	err    error
}

func (e *envReader) str(key string, dst *string) {
	if v, ok := e.lookup(key); ok && strings.TrimSpace(v) != "" {
		*dst = strings.TrimSpace(v)
	}
}

// duration reads a whole number n of units, min ≤ n ≤ max.
func (e *envReader) duration(key string, dst *time.Duration, unit time.Duration, min, max int, want string) {
	v, ok := e.lookup(key)
	if !ok || v == "" || e.err != nil {
		return
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		e.err = fmt.Errorf("%s=%q: %s", key, v, want)
		return
	}
	*dst = time.Duration(n) * unit
}

func (e *envReader) boolean(key string, dst *bool) {
	v, ok := e.lookup(key)
	if !ok || v == "" || e.err != nil {
		return
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		e.err = fmt.Errorf("%s=%q: want true or false", key, v)
		return
	}
	*dst = b
}

// Logger is the JSON logger every function uses (CloudWatch parses JSON lines).
func (c Config) Logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: c.LogLevel}))
}
