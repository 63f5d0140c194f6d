package app_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/app"
)

func lookup(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestFromLookup(t *testing.T) {
	c, err := app.FromLookup(lookup(nil))
	if err != nil || c.Table != "cdp" || c.WebhookTimeout != 10*time.Second || c.AllowPrivateWebhooks || c.LogLevel != slog.LevelInfo || c.TimelineRetention != 90*24*time.Hour {
		t.Fatalf("defaults: %+v %v", c, err)
	}
	c, err = app.FromLookup(lookup(map[string]string{
		"CDP_TABLE": "t", "CDP_EVENTS_STREAM": "e", "CDP_ALLOWED_ORIGINS": "https://a.example,https://b.example",
		"CDP_ALLOW_PRIVATE_WEBHOOKS": "true", "CDP_WEBHOOK_TIMEOUT_SECONDS": "3", "CDP_TIMELINE_RETENTION_DAYS": "30",
		"CDP_KEY_CACHE_SECONDS": "0", "LOG_LEVEL": "debug", "CDP_SPACE_ID": "acme",
		"CDP_LEGACY_DEDUPE": "true", "CDP_PRIVACY_KEY": "0123456789abcdef0123456789abcdef", "CDP_PRIVACY_KEY_SECRET": "arn:x",
	}))
	if err != nil || c.Table != "t" || c.EventsStream != "e" || len(c.AllowedOrigins) != 2 || !c.AllowPrivateWebhooks ||
		c.WebhookTimeout != 3*time.Second || c.TimelineRetention != 30*24*time.Hour || c.KeyCacheTTL != 0 || c.LogLevel != slog.LevelDebug || c.SpaceID != "acme" || !c.LegacyDedupe ||
		string(c.PrivacyKey) != "0123456789abcdef0123456789abcdef" || c.PrivacyKeySecret != "arn:x" {
		t.Fatalf("%+v %v", c, err)
	}
	for _, bad := range []map[string]string{
		{"CDP_ALLOW_PRIVATE_WEBHOOKS": "yes please"}, {"CDP_LEGACY_DEDUPE": "sometimes"}, {"CDP_WEBHOOK_TIMEOUT_SECONDS": "0"}, {"CDP_WEBHOOK_TIMEOUT_SECONDS": "31"},
		{"CDP_TIMELINE_RETENTION_DAYS": "0"}, {"CDP_KEY_CACHE_SECONDS": "-1"}, {"LOG_LEVEL": "loud"},
		{"CDP_PRIVACY_KEY": "too short"},
	} {
		if _, err := app.FromLookup(lookup(bad)); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestRetrainFromLookup(t *testing.T) {
	c, err := app.FromLookup(lookup(map[string]string{"CDP_RETRAIN_DAYS": "3", "CDP_RESCORE_HOURS": "6"}))
	if err != nil || c.RetrainEvery != 72*time.Hour || c.RescoreEvery != 6*time.Hour {
		t.Fatalf("%+v %v", c, err)
	}
	for _, bad := range []map[string]string{{"CDP_RETRAIN_DAYS": "0"}, {"CDP_RETRAIN_DAYS": "366"}, {"CDP_RETRAIN_DAYS": "weekly"},
		{"CDP_RESCORE_HOURS": "0"}, {"CDP_RESCORE_HOURS": "8761"}, {"CDP_RESCORE_HOURS": "daily"}} {
		if _, err := app.FromLookup(lookup(bad)); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestArchiveLagFromLookup(t *testing.T) {
	c, err := app.FromLookup(lookup(map[string]string{"CDP_ARCHIVE_BUCKET": "b", "CDP_ARCHIVE_LAG_SECONDS": "90"}))
	if err != nil || c.Archive != "s3://b" || c.ArchiveLag != 90*time.Second {
		t.Fatalf("%+v %v", c, err)
	}
	if c, err := app.FromLookup(lookup(nil)); err != nil || c.ArchiveLag != 0 {
		t.Fatalf("default: %v %v", c.ArchiveLag, err)
	}
	for _, bad := range []string{"0", "-5", "86401", "15m"} {
		if _, err := app.FromLookup(lookup(map[string]string{"CDP_ARCHIVE_LAG_SECONDS": bad})); err == nil {
			t.Errorf("CDP_ARCHIVE_LAG_SECONDS=%s accepted", bad)
		}
	}
}
