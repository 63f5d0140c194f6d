package destination_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/apitypes"
	"github.com/serverless-cdp/cdp/internal/destination"
)

// roundTrip encodes from, decodes it strictly into a new T (every field must be known) and
// checks that T encodes the same JSON.
func roundTrip[T any](t *testing.T, name string, from any) {
	t.Helper()
	want, err := json.Marshal(from)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(want))
	dec.DisallowUnknownFields()
	var to T
	if err := dec.Decode(&to); err != nil {
		t.Fatalf("%s: %s does not decode: %v", name, want, err)
	}
	got, _ := json.Marshal(to)
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: encodes\n%s\nnot\n%s", name, got, want)
	}
}

// TestWireTypesMatchTheCLI: the cdp CLI's copies of the destination wire types (package
// apitypes) encode exactly as the server's, field for field, both ways, and share the limits.
func TestWireTypesMatchTheCLI(t *testing.T) {
	if apitypes.MaxDestinationBatchSize != destination.MaxBatchSize || apitypes.MaxDestinationHeaders != destination.MaxHeaders ||
		apitypes.MaxDestinationConsentCategories != destination.MaxConsentCategories {
		t.Fatal("the CLI's limits differ from the server's")
	}
	on, at := true, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	subs := destination.Subscriptions{Audiences: []string{"vip", "*"}, Traits: []string{"ltv"},
		Events: []destination.EventFilter{{Type: "track", Name: "Order Completed", Properties: map[string]json.RawMessage{"plan": json.RawMessage(`"pro"`)}}}, Privacy: true}
	spec := destination.Spec{Name: "crm", URL: "https://crm.example", Enabled: &on, Signing: "segment", BatchSize: 10,
		TimeoutSeconds: 5, Headers: map[string]string{"x-team": "growth"}, Subscriptions: subs, Secret: "whsec_x",
		ConsentCategories: []string{"advertising"}, RequireConsent: true}
	roundTrip[apitypes.DestinationSpec](t, "Spec", spec)
	d := destination.Destination{ID: "dst_1", Name: "crm", URL: "https://crm.example", Enabled: true, DisabledReason: "gone",
		Signing: "standard", BatchSize: 1, TimeoutSeconds: 3, Headers: map[string]string{"a": "b"}, Subscriptions: subs,
		ConsentCategories: []string{"advertising", "analytics"}, RequireConsent: true,
		Secrets:   []destination.Secret{{Value: "hidden", Hint: "whsec_ab", CreatedAt: at, ExpiresAt: &at}},
		CreatedAt: at, UpdatedAt: at, Version: 4}
	roundTrip[apitypes.Destination](t, "Destination", d)

	var cli apitypes.DestinationSpec
	b, _ := json.Marshal(spec)
	_ = json.Unmarshal(b, &cli)
	roundTrip[destination.Spec](t, "DestinationSpec", cli)
	var cliDest apitypes.Destination
	b, _ = json.Marshal(d)
	_ = json.Unmarshal(b, &cliDest)
	roundTrip[destination.Destination](t, "apitypes.Destination", cliDest)
}
