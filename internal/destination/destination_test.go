package destination

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/tracking"
	"github.com/serverless-cdp/cdp/internal/webhook"
)

func TestSubscriptions(t *testing.T) {
	s := Subscriptions{
		Audiences: []string{"vip"},
		Traits:    []string{"ltv"},
		Events: []EventFilter{
			{Type: "track", Name: "Order Completed", Properties: map[string]json.RawMessage{"currency": json.RawMessage(`"EUR"`)}},
			{Type: "page"},
		},
	}
	if !s.WantsAudience("aud_1", "vip") || s.WantsAudience("aud_2", "churn") {
		t.Error("audience match")
	}
	if (Subscriptions{Audiences: []string{"*"}}).WantsAudience("x", "y") != true {
		t.Error("wildcard audience")
	}
	got := s.WantedTraits(map[string]json.RawMessage{"ltv": json.RawMessage(`10`), "other": json.RawMessage(`1`)})
	if len(got) != 1 || string(got["ltv"]) != "10" {
		t.Errorf("traits %v", got)
	}
	if s.WantedTraits(map[string]json.RawMessage{"other": json.RawMessage(`1`)}) != nil {
		t.Error("unwanted traits")
	}
	cases := []struct {
		m    tracking.Message
		want bool
	}{
		{tracking.Message{Type: "track", Event: "Order Completed", Properties: json.RawMessage(`{"currency":"EUR","total":3}`)}, true},
		{tracking.Message{Type: "track", Event: "Order Completed", Properties: json.RawMessage(`{"currency":"USD"}`)}, false},
		{tracking.Message{Type: "track", Event: "Order Completed"}, false},
		{tracking.Message{Type: "track", Event: "Viewed"}, false},
		{tracking.Message{Type: "page", Name: "Home"}, true},
		{tracking.Message{Type: "identify"}, false},
	}
	for i, c := range cases {
		if got := s.WantsEvent(&c.m); got != c.want {
			t.Errorf("case %d: got %v", i, got)
		}
	}
}

func TestSpecValidation(t *testing.T) {
	bad := []Spec{
		{URL: "https://x.example"},
		{Name: "a", URL: "http://127.0.0.1/"},
		{Name: "a", URL: "https://x.example", Signing: "hmac"},
		{Name: "a", URL: "https://x.example", BatchSize: 1000},
		{Name: "a", URL: "https://x.example", Headers: map[string]string{"webhook-id": "x"}},
		{Name: "a", URL: "https://x.example", Headers: map[string]string{"X-A": "a\r\nb"}},
		{Name: "a", URL: "https://x.example", Secret: "not-whsec"},
		{Name: "a", URL: "https://x.example", Subscriptions: Subscriptions{Events: []EventFilter{{Type: "click"}}}},
	}
	for i, sp := range bad {
		var ve *ValidationError
		if err := sp.normalize(webhook.Policy{}); !errors.As(err, &ve) {
			t.Errorf("case %d accepted: %v", i, err)
		}
	}
	ok := Spec{Name: "a", URL: "https://x.example", Headers: map[string]string{"Authorization": "Bearer x"}}
	if err := ok.normalize(webhook.Policy{}); err != nil || ok.BatchSize != 1 || ok.Signing != webhook.ModeStandard {
		t.Fatalf("%v %+v", err, ok)
	}
	lo := Spec{Name: "a", URL: "http://127.0.0.1:9/"}
	if err := lo.normalize(webhook.Policy{AllowLoopback: true}); err != nil {
		t.Fatal(err)
	}
}

// runServiceScenario: create (secret shown once, hidden in JSON), rotate (both secrets sign
// during the grace), update, disable, list, delete — over whichever Store svc uses.
func runServiceScenario(t *testing.T, newService func(t *testing.T, opts ...Option) *Service) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	svc := newService(t, WithClock(func() time.Time { return now }))
	ctx := context.Background()

	d, secret, err := svc.Create(ctx, Spec{Name: "crm", URL: "https://hooks.example.com/cdp",
		Subscriptions: Subscriptions{Audiences: []string{"*"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := webhook.SecretKey(secret); err != nil || !d.Enabled {
		t.Fatalf("secret %q enabled %v", secret, d.Enabled)
	}
	b, _ := json.Marshal(d)
	if json.Valid(b) && contains(string(b), secret) {
		t.Fatal("secret leaks through JSON")
	}
	got, err := svc.Get(ctx, d.ID)
	if err != nil || got.URL != d.URL || len(got.LiveSecrets(now)) != 1 || got.LiveSecrets(now)[0] != secret {
		t.Fatalf("get: %+v %v", got, err)
	}

	// Rotation: both secrets sign until the grace period ends.
	_, newSecret, err := svc.RotateSecret(ctx, d.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	got, _ = svc.Get(ctx, d.ID)
	if live := got.LiveSecrets(now); len(live) != 2 || live[0] != newSecret || live[1] != secret {
		t.Fatalf("live during rotation: %d", len(live))
	}
	if live := got.LiveSecrets(now.Add(2 * time.Hour)); len(live) != 1 || live[0] != newSecret {
		t.Fatalf("live after grace: %d", len(live))
	}

	if _, err := svc.Update(ctx, d.ID, Spec{Name: "crm2", URL: "https://hooks.example.com/v2", BatchSize: 10,
		ConsentCategories: []string{"advertising"}, RequireConsent: true, Subscriptions: Subscriptions{Privacy: true}}); err != nil {
		t.Fatal(err)
	}
	if err := svc.Disable(ctx, d.ID, "410 Gone"); err != nil {
		t.Fatal(err)
	}
	got, _ = svc.Get(ctx, d.ID)
	if got.Name != "crm2" || got.BatchSize != 10 || got.Enabled || got.DisabledReason != "410 Gone" || got.Version != 4 ||
		!got.RequireConsent || len(got.ConsentCategories) != 1 || got.ConsentCategories[0] != "advertising" || !got.Subscriptions.Privacy {
		t.Fatalf("after update/disable: %+v", got)
	}
	if len(got.LiveSecrets(now)) != 2 {
		t.Fatal("update lost secrets")
	}
	list, err := svc.List(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("list %v %v", list, err)
	}
	if err := svc.Delete(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Get(ctx, d.ID); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	if err := svc.Delete(ctx, d.ID); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func TestServiceInMemory(t *testing.T) {
	runServiceScenario(t, func(_ *testing.T, opts ...Option) *Service { return NewMemService(opts...) })
}

// TestConsentSettingsValidation: consentCategories is at most 32 distinct names of 1 to 128
// bytes, and a refusal names the field.
func TestConsentSettingsValidation(t *testing.T) {
	many := make([]string, MaxConsentCategories+1)
	for i := range many {
		many[i] = fmt.Sprintf("c%d", i)
	}
	bad := [][]string{many, {""}, {strings.Repeat("c", 129)}, {"ads", "analytics", "ads"}}
	for i, cats := range bad {
		sp := Spec{Name: "a", URL: "https://x.example", ConsentCategories: cats}
		var ve *ValidationError
		if err := sp.normalize(webhook.Policy{}); !errors.As(err, &ve) || !strings.Contains(ve.Msg, "consentCategories") {
			t.Errorf("case %d: %v", i, err)
		}
	}
	ok := Spec{Name: "a", URL: "https://x.example", ConsentCategories: append(many[:MaxConsentCategories:MaxConsentCategories], strings.Repeat("c", 128))[1:]}
	if err := ok.normalize(webhook.Policy{}); err != nil {
		t.Fatal(err)
	}
}

func TestValidatorsMatchTheirGrammar(t *testing.T) {
	keys := map[string]bool{"vip": true, "a.b:c-d_e": true, "": false, "a b": false, "é": false, "a/b": false,
		strings.Repeat("k", 200): true, strings.Repeat("k", 201): false, "x\n": false}
	for k, want := range keys {
		if validKey(k) != want {
			t.Errorf("validKey(%q) = %v", k, !want)
		}
	}
	names := map[string]bool{"Authorization": true, "X-Api-Key": true, "a!#$%&'*+.^_`|~-9": true, "": false,
		"X Api": false, "X:Y": false, "X\r": false, strings.Repeat("h", 100): true, strings.Repeat("h", 101): false}
	for k, want := range names {
		if validHeaderName(k) != want {
			t.Errorf("validHeaderName(%q) = %v", k, !want)
		}
	}
}
