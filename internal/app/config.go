// Package app is what every function shares: the configuration read from the environment and
// Start, the body of each functions/<name>/main.go. Each function's wiring lives in its own
// package (internal/app/<name>fn) so a Lambda links and initialises only the stages it uses;
// the local runner (internal/local) calls the same constructors, so what runs locally is wired
// exactly like what runs on Lambda.
package app

import (
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"
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
	str := func(key string, dst *string) {
		if v, ok := lookup(key); ok && strings.TrimSpace(v) != "" {
			*dst = strings.TrimSpace(v)
		}
	}
	str("CDP_TABLE", &c.Table)
	str("CDP_EVENTS_STREAM", &c.EventsStream)
	str("CDP_CHANGES_STREAM", &c.ChangesStream)
	str("CDP_ACTIVATIONS_STREAM", &c.ActivationsStream)
	if v, ok := lookup("CDP_ALLOWED_ORIGINS"); ok && strings.TrimSpace(v) != "" {
		c.AllowedOrigins = strings.Split(v, ",")
	}
	if v, ok := lookup("CDP_KEY_CACHE_SECONDS"); ok && v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return Config{}, fmt.Errorf("CDP_KEY_CACHE_SECONDS=%q: want a whole number of seconds", v)
		}
		c.KeyCacheTTL = time.Duration(n) * time.Second
	}
	if v, ok := lookup("CDP_TIMELINE_RETENTION_DAYS"); ok && v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return Config{}, fmt.Errorf("CDP_TIMELINE_RETENTION_DAYS=%q: want a whole number of days ≥ 1", v)
		}
		c.TimelineRetention = time.Duration(n) * 24 * time.Hour
	}
	str("CDP_SPACE_ID", &c.SpaceID)
	if v, ok := lookup("CDP_LEGACY_DEDUPE"); ok && v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return Config{}, fmt.Errorf("CDP_LEGACY_DEDUPE=%q: want true or false", v)
		}
		c.LegacyDedupe = b
	}
	if v, ok := lookup("CDP_WEBHOOK_TIMEOUT_SECONDS"); ok && v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 30 {
			return Config{}, fmt.Errorf("CDP_WEBHOOK_TIMEOUT_SECONDS=%q: want 1 to 30", v)
		}
		c.WebhookTimeout = time.Duration(n) * time.Second
	}
	if v, ok := lookup("CDP_ALLOW_PRIVATE_WEBHOOKS"); ok && v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return Config{}, fmt.Errorf("CDP_ALLOW_PRIVATE_WEBHOOKS=%q: want true or false", v)
		}
		c.AllowPrivateWebhooks = b
	}
	if v, ok := lookup("LOG_LEVEL"); ok && v != "" {
		if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
			return Config{}, fmt.Errorf("LOG_LEVEL=%q: %w", v, err)
		}
	}
	return c, nil
}

// Logger is the JSON logger every function uses (CloudWatch parses JSON lines).
func (c Config) Logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: c.LogLevel}))
}
