// Package destination defines webhook destinations — where activation delivers, what each one
// receives, how requests are signed — and stores them in the shared DynamoDB table.
//
// Service depends on the Store port (service.go): NewDynamoStore keeps destinations in the
// table, NewMemStore in memory for tests; one conformance suite runs against both. Validation
// uses no regular expressions, so loading the package costs nothing at init.
//
// Keys (single table, see internal/store):
//
//	pk = "DESTS", sk = "DEST#<id>"   one item per destination; the whole definition as JSON in
//	                                 `doc`, plus `version` for optimistic concurrency. One partition
//	                                 keeps List strongly consistent; there are few destinations.
//
// Signing secrets are stored in the item (DynamoDB encrypts at rest); they are returned only when
// created or rotated. During a rotation the old secret keeps signing (both signatures are sent)
// until it expires.
package destination

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/serverless-cdp/cdp/internal/consent"
	"github.com/serverless-cdp/cdp/internal/tracking"
	"github.com/serverless-cdp/cdp/internal/webhook"
)

// Limits.
const (
	MaxBatchSize   = 100
	MaxTimeout     = 30 * time.Second
	MaxHeaders     = 20
	DefaultGrace   = 24 * time.Hour // how long a rotated-out secret keeps signing
	maxNameLen     = 100
	maxHeaderBytes = 4096
)

// Errors.
var (
	ErrNotFound = errors.New("destination not found")
	ErrConflict = errors.New("destination was changed concurrently")
)

// ValidationError is a bad destination definition; its message is safe to show to the caller.
type ValidationError struct{ Msg string }

func (e *ValidationError) Error() string { return e.Msg }

func invalid(format string, a ...any) error { return &ValidationError{Msg: fmt.Sprintf(format, a...)} }

// Destination is one webhook endpoint.
type Destination struct {
	ID             string            `json:"id"`
	Name           string            `json:"name"`
	URL            string            `json:"url"`
	Enabled        bool              `json:"enabled"`
	DisabledReason string            `json:"disabledReason,omitempty"` // e.g. set when the receiver answered 410
	Signing        string            `json:"signing"`                  // webhook.ModeStandard or webhook.ModeSegment
	BatchSize      int               `json:"batchSize"`                // 1: one message per request; >1: {"batch":[…]}
	TimeoutSeconds int               `json:"timeoutSeconds,omitempty"` // 0: the function's default
	Headers        map[string]string `json:"headers,omitempty"`        // static headers sent with every request
	Subscriptions  Subscriptions     `json:"subscriptions"`
	// ConsentCategories: a message is sent only if every category is granted in the
	// preferences that apply (see internal/consent.Allows); empty: no category is enforced.
	ConsentCategories []string `json:"consentCategories,omitempty"`
	// RequireConsent: a message with no preferences at all is not sent.
	RequireConsent bool      `json:"requireConsent,omitempty"`
	Secrets        []Secret  `json:"secrets"` // current first; values hidden in JSON
	CreatedAt      time.Time `json:"createdAt"`
	UpdatedAt      time.Time `json:"updatedAt"`
	Version        int64     `json:"version"`
}

// Secret is one signing secret. The value never leaves through JSON.
type Secret struct {
	Value     string     `json:"-"`
	Hint      string     `json:"hint"` // the first characters, to tell secrets apart
	CreatedAt time.Time  `json:"createdAt"`
	ExpiresAt *time.Time `json:"expiresAt,omitempty"` // set on a rotated-out secret
}

// storedSecret is Secret with its value, for storage only.
type storedSecret struct {
	Value     string     `json:"value"`
	CreatedAt time.Time  `json:"createdAt"`
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
}

// LiveSecrets returns the secret values that sign at now, current first.
func (d Destination) LiveSecrets(now time.Time) []string {
	var out []string
	for _, s := range d.Secrets {
		if s.ExpiresAt == nil || now.Before(*s.ExpiresAt) {
			out = append(out, s.Value)
		}
	}
	return out
}

// Timeout is the per-request timeout, or def when the destination sets none.
func (d Destination) Timeout(def time.Duration) time.Duration {
	if d.TimeoutSeconds > 0 {
		return time.Duration(d.TimeoutSeconds) * time.Second
	}
	return def
}

// Subscriptions say what a destination receives. Empty lists receive nothing of that kind.
type Subscriptions struct {
	// Audiences: audience keys (or ids) whose entered/exited transitions are sent; "*" for all.
	Audiences []string `json:"audiences,omitempty"`
	// Traits: computed trait keys whose changes are sent identify-style; "*" for all.
	Traits []string `json:"traits,omitempty"`
	// Events: forwarded events matching any filter are sent as received.
	Events []EventFilter `json:"events,omitempty"`
	// Privacy: the destination receives a signed Privacy Request notice when a person is
	// deleted or suppressed, so the tool behind it can erase them too.
	Privacy bool `json:"privacy,omitempty"`
}

// EventFilter matches forwarded events. Empty fields match anything; Properties must all be
// present with equal JSON values.
type EventFilter struct {
	Type       string                     `json:"type,omitempty"` // track, identify, page, screen, group, alias
	Name       string                     `json:"name,omitempty"` // track event name, or page/screen name
	Properties map[string]json.RawMessage `json:"properties,omitempty"`
}

// WantsAudience reports whether entered/exited transitions of the audience are sent.
func (s Subscriptions) WantsAudience(id, key string) bool {
	return slices.ContainsFunc(s.Audiences, func(a string) bool { return a == "*" || a == key || (id != "" && a == id) })
}

// WantedTraits returns the subset of changed traits the destination receives (nil for none).
func (s Subscriptions) WantedTraits(traits map[string]json.RawMessage) map[string]json.RawMessage {
	if len(s.Traits) == 0 || len(traits) == 0 {
		return nil
	}
	if slices.Contains(s.Traits, "*") {
		return traits
	}
	var out map[string]json.RawMessage
	for _, k := range s.Traits {
		if v, ok := traits[k]; ok {
			if out == nil {
				out = map[string]json.RawMessage{}
			}
			out[k] = v
		}
	}
	return out
}

// WantsEvent reports whether a forwarded event matches one of the event filters.
func (s Subscriptions) WantsEvent(m *tracking.Message) bool {
	if m == nil {
		return false
	}
	for _, f := range s.Events {
		if f.matches(m) {
			return true
		}
	}
	return false
}

func (f EventFilter) matches(m *tracking.Message) bool {
	if f.Type != "" && f.Type != m.Type {
		return false
	}
	if f.Name != "" {
		name := m.Event
		if m.Type == tracking.TypePage || m.Type == tracking.TypeScreen {
			name = m.Name
		}
		if name != f.Name {
			return false
		}
	}
	if len(f.Properties) == 0 {
		return true
	}
	var props map[string]json.RawMessage
	if len(m.Properties) == 0 || json.Unmarshal(m.Properties, &props) != nil {
		return false
	}
	for k, want := range f.Properties {
		got, ok := props[k]
		if !ok || !jsonEqual(got, want) {
			return false
		}
	}
	return true
}

func jsonEqual(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// Spec is what an operator sets on a destination (create and full update).
type Spec struct {
	Name           string            `json:"name"`
	URL            string            `json:"url"`
	Enabled        *bool             `json:"enabled,omitempty"` // default true
	Signing        string            `json:"signing,omitempty"` // default standard
	BatchSize      int               `json:"batchSize,omitempty"`
	TimeoutSeconds int               `json:"timeoutSeconds,omitempty"`
	Headers        map[string]string `json:"headers,omitempty"`
	Subscriptions  Subscriptions     `json:"subscriptions"`
	// ConsentCategories and RequireConsent gate what is sent by consent (see Destination).
	ConsentCategories []string `json:"consentCategories,omitempty"`
	RequireConsent    bool     `json:"requireConsent,omitempty"`
	// Secret optionally sets the signing secret on create (e.g. one a Segment receiver already
	// uses); standard mode needs a whsec_ secret. Empty: one is generated.
	Secret string `json:"secret,omitempty"`
}

var (
	eventTypes = []string{"", tracking.TypeTrack, tracking.TypeIdentify, tracking.TypePage,
		tracking.TypeScreen, tracking.TypeGroup, tracking.TypeAlias}
	reservedHeaders = []string{"host", "content-length", "content-type", "content-encoding",
		"transfer-encoding", "connection", "user-agent", "webhook-id", "webhook-timestamp",
		"webhook-signature", "x-signature"}
)

// Limits of subscription keys and header names (checked without regular expressions, so that
// loading the package costs nothing at init).
const (
	maxKeyLen        = 200
	maxHeaderNameLen = 100
	// MaxConsentCategories bounds consentCategories; each name is 1 to
	// consent.MaxCategoryBytes bytes.
	MaxConsentCategories = 32
)

// validKey: 1 to maxKeyLen characters of [A-Za-z0-9_.:-].
func validKey(s string) bool {
	return validChars(s, maxKeyLen, func(c byte) bool {
		return isAlnum(c) || strings.IndexByte("_.:-", c) >= 0
	})
}

// validHeaderName: 1 to maxHeaderNameLen RFC 9110 token characters.
func validHeaderName(s string) bool {
	return validChars(s, maxHeaderNameLen, func(c byte) bool {
		return isAlnum(c) || strings.IndexByte("!#$%&'*+.^_`|~-", c) >= 0
	})
}

func validChars(s string, maxLen int, ok func(byte) bool) bool {
	if len(s) == 0 || len(s) > maxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// normalize validates a spec and fills defaults. policy checks the URL.
func (sp *Spec) normalize(policy webhook.Policy) error {
	sp.Name = strings.TrimSpace(sp.Name)
	if sp.Name == "" || len(sp.Name) > maxNameLen {
		return invalid("name is required (at most %d characters)", maxNameLen)
	}
	if err := policy.ValidateURL(sp.URL); err != nil {
		return invalid("url: %v", err)
	}
	for _, check := range []func() error{sp.normalizeDelivery, sp.checkHeaders, sp.Subscriptions.check, sp.checkConsent, sp.checkSecret} {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

// normalizeDelivery checks and defaults the signing mode, batch size and timeout.
func (sp *Spec) normalizeDelivery() error {
	switch sp.Signing {
	case "":
		sp.Signing = webhook.ModeStandard
	case webhook.ModeStandard, webhook.ModeSegment:
	default:
		return invalid("signing must be %q or %q", webhook.ModeStandard, webhook.ModeSegment)
	}
	if sp.BatchSize == 0 {
		sp.BatchSize = 1
	}
	if sp.BatchSize < 1 || sp.BatchSize > MaxBatchSize {
		return invalid("batchSize must be between 1 and %d", MaxBatchSize)
	}
	if sp.TimeoutSeconds < 0 || time.Duration(sp.TimeoutSeconds)*time.Second > MaxTimeout {
		return invalid("timeoutSeconds must be between 1 and %d (0: default)", int(MaxTimeout/time.Second))
	}
	return nil
}

func (sp *Spec) checkHeaders() error {
	if len(sp.Headers) > MaxHeaders {
		return invalid("at most %d headers", MaxHeaders)
	}
	size := 0
	for k, v := range sp.Headers {
		if !validHeaderName(k) {
			return invalid("header name %q is invalid", k)
		}
		if slices.Contains(reservedHeaders, strings.ToLower(k)) {
			return invalid("header %q is set by the platform", http.CanonicalHeaderKey(k))
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			return invalid("header %q has an invalid value", k)
		}
		size += len(k) + len(v)
	}
	if size > maxHeaderBytes {
		return invalid("headers are larger than %d bytes", maxHeaderBytes)
	}
	return nil
}

func (s *Subscriptions) check() error {
	for _, lst := range [][]string{s.Audiences, s.Traits} {
		for _, k := range lst {
			if k != "*" && !validKey(k) {
				return invalid("subscription key %q is invalid", k)
			}
		}
	}
	for _, f := range s.Events {
		if !slices.Contains(eventTypes, f.Type) {
			return invalid("event filter type %q is not a tracking type", f.Type)
		}
		for k, v := range f.Properties {
			if !json.Valid(v) {
				return invalid("event filter property %q is not JSON", k)
			}
		}
	}
	return nil
}

// checkConsent: at most MaxConsentCategories distinct names of 1 to consent.MaxCategoryBytes
// bytes.
func (sp *Spec) checkConsent() error {
	if len(sp.ConsentCategories) > MaxConsentCategories {
		return invalid("consentCategories: at most %d categories", MaxConsentCategories)
	}
	for i, c := range sp.ConsentCategories {
		if len(c) == 0 || len(c) > consent.MaxCategoryBytes {
			return invalid("consentCategories[%d]: a category is 1 to %d bytes", i, consent.MaxCategoryBytes)
		}
		if slices.Contains(sp.ConsentCategories[:i], c) {
			return invalid("consentCategories[%d]: %q is listed twice", i, c)
		}
	}
	return nil
}

func (sp *Spec) checkSecret() error {
	if sp.Secret != "" && sp.Signing == webhook.ModeStandard {
		if _, err := webhook.SecretKey(sp.Secret); err != nil {
			return invalid("secret: %v", err)
		}
	}
	if sp.Secret != "" && len(sp.Secret) < 16 {
		return invalid("secret must have at least 16 characters")
	}
	return nil
}
