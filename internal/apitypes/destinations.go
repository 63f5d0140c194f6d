package apitypes

import (
	"encoding/json"
	"time"
)

// Limits of a destination definition the cdp CLI checks locally (the server's are the same
// constants: destination.MaxBatchSize and destination.MaxHeaders).
const (
	MaxDestinationBatchSize         = 100
	MaxDestinationHeaders           = 20
	MaxDestinationConsentCategories = 32
)

// The destination routes' wire types as the cdp CLI sends and reads them. The server's own
// types (package destination: Spec, Destination, Subscriptions) carry behaviour and stay there;
// a test in package destination checks that both encode the same JSON.

// DestinationSpec is the body of POST /admin/v1/destinations and PUT /admin/v1/destinations/{id}.
type DestinationSpec struct {
	Name           string            `json:"name"`
	URL            string            `json:"url"`
	Enabled        *bool             `json:"enabled,omitempty"` // default true
	Signing        string            `json:"signing,omitempty"` // default standard
	BatchSize      int               `json:"batchSize,omitempty"`
	TimeoutSeconds int               `json:"timeoutSeconds,omitempty"`
	Headers        map[string]string `json:"headers,omitempty"`
	Subscriptions  Subscriptions     `json:"subscriptions"`
	// ConsentCategories: sent only if every category is granted; RequireConsent: nothing
	// without preferences.
	ConsentCategories []string `json:"consentCategories,omitempty"`
	RequireConsent    bool     `json:"requireConsent,omitempty"`
	// Secret optionally sets the signing secret on create; empty: one is generated.
	Secret string `json:"secret,omitempty"`
}

// Subscriptions say what a destination receives. Empty lists receive nothing of that kind.
type Subscriptions struct {
	Audiences []string                 `json:"audiences,omitempty"` // audience keys or ids; "*" for all
	Traits    []string                 `json:"traits,omitempty"`    // computed trait keys; "*" for all
	Events    []DestinationEventFilter `json:"events,omitempty"`    // forwarded events matching any filter
	Privacy   bool                     `json:"privacy,omitempty"`   // Privacy Request notices
}

// DestinationEventFilter matches forwarded events. Empty fields match anything; Properties must
// all be present with equal JSON values.
type DestinationEventFilter struct {
	Type       string                     `json:"type,omitempty"`
	Name       string                     `json:"name,omitempty"`
	Properties map[string]json.RawMessage `json:"properties,omitempty"`
}

// Destination is a destination as the admin API answers it (secrets' values are never sent).
type Destination struct {
	ID                string              `json:"id"`
	Name              string              `json:"name"`
	URL               string              `json:"url"`
	Enabled           bool                `json:"enabled"`
	DisabledReason    string              `json:"disabledReason,omitempty"`
	Signing           string              `json:"signing"`
	BatchSize         int                 `json:"batchSize"`
	TimeoutSeconds    int                 `json:"timeoutSeconds,omitempty"`
	Headers           map[string]string   `json:"headers,omitempty"`
	Subscriptions     Subscriptions       `json:"subscriptions"`
	ConsentCategories []string            `json:"consentCategories,omitempty"`
	RequireConsent    bool                `json:"requireConsent,omitempty"`
	Secrets           []DestinationSecret `json:"secrets"`
	CreatedAt         time.Time           `json:"createdAt"`
	UpdatedAt         time.Time           `json:"updatedAt"`
	Version           int64               `json:"version"`
}

// DestinationSecret describes one signing secret without its value.
type DestinationSecret struct {
	Hint      string     `json:"hint"`
	CreatedAt time.Time  `json:"createdAt"`
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
}

// DestinationList answers GET /admin/v1/destinations.
type DestinationList struct {
	Destinations []Destination `json:"destinations"`
}

// CreatedDestination answers POST /admin/v1/destinations: the secret is shown this once.
type CreatedDestination struct {
	Destination Destination `json:"destination"`
	Secret      string      `json:"secret"`
}
