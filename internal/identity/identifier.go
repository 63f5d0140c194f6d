package identity

import (
	"encoding/json"
	"strings"

	"github.com/serverless-cdp/cdp/internal/tracking"
)

// Identifier types extracted from the standard fields of a message. `context.externalIds` add
// types of their own (e.g. `ios.idfa`, `crm_id`).
const (
	TypeUserID        = "user_id"
	TypeAnonymousID   = "anonymous_id"
	TypeEmail         = "email"
	TypePhone         = "phone"
	TypeDeviceID      = "device_id"
	TypeAdvertisingID = "advertising_id"
	// TypeGroupID is not an identity of a person; it names the accounts in Profile API links.
	TypeGroupID = "group_id"
)

// MaxIdentifiersPerMessage bounds the identifiers one message can contribute; the rest are
// ignored, so one pathological message cannot blow a transaction's size.
const MaxIdentifiersPerMessage = 40

// Identifier is one identity, e.g. user_id:abc. Values are normalised: trimmed, and e-mail
// addresses lower-cased; types are trimmed and lower-cased.
type Identifier struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

func (i Identifier) String() string { return i.Type + ":" + i.Value }

// NewIdentifier normalises a type and value as extraction does.
func NewIdentifier(typ, value string) Identifier {
	typ = strings.ToLower(strings.TrimSpace(typ))
	value = strings.TrimSpace(value)
	if typ == TypeEmail {
		value = strings.ToLower(value)
	}
	return Identifier{Type: typ, Value: value}
}

// ParseIdentifier reads `type:value` (the Profile API's path form). ok is false if there is no
// colon or either side is empty.
func ParseIdentifier(s string) (Identifier, bool) {
	typ, value, found := strings.Cut(s, ":")
	id := NewIdentifier(typ, value)
	return id, found && id.Type != "" && id.Value != ""
}

// Extracted are the identifiers of one message, in a stable order, with metadata.
type Extracted struct {
	IDs []Identifier
	// Encoding per identifier from externalIds (absent means "none").
	Encoding map[Identifier]string
	// PreviousID is the alias call's previousId, normalised ("" for other types). Its type
	// (user_id or anonymous_id) is decided during resolution.
	PreviousID string
}

type contextFields struct {
	Traits map[string]json.RawMessage `json:"traits"`
	Device struct {
		ID            json.RawMessage `json:"id"`
		AdvertisingID json.RawMessage `json:"advertisingId"`
	} `json:"device"`
	ExternalIDs []struct {
		ID         json.RawMessage `json:"id"`
		Type       json.RawMessage `json:"type"`
		Collection json.RawMessage `json:"collection"`
		Encoding   json.RawMessage `json:"encoding"`
	} `json:"externalIds"`
}

// Extract returns the identifiers of a message: userId, anonymousId, email and phone (from
// identify traits or context.traits), context.device.id and advertisingId, and
// context.externalIds of the users collection. Malformed optional fields are ignored rather
// than failing the message; values that normalise to empty, or break tracking's key limits
// (length, valid UTF-8), are dropped. Duplicates are removed.
func Extract(m *tracking.Message) Extracted {
	x := &extractor{ex: Extracted{Encoding: map[Identifier]string{}}, seen: map[Identifier]bool{}}
	x.add(TypeUserID, m.UserID, "")
	x.add(TypeAnonymousID, m.AnonymousID, "")
	if m.Type == tracking.TypeAlias && len(m.PreviousID) <= tracking.MaxIDBytes {
		x.ex.PreviousID = strings.TrimSpace(m.PreviousID)
	}
	ctx := decodeContext(m.Context)
	var traits map[string]json.RawMessage
	if m.Type == tracking.TypeIdentify && len(m.Traits) > 0 {
		_ = json.Unmarshal(m.Traits, &traits)
	}
	for _, src := range []map[string]json.RawMessage{traits, ctx.Traits} {
		x.add(TypeEmail, scalar(src["email"]), "")
	}
	for _, src := range []map[string]json.RawMessage{traits, ctx.Traits} {
		x.add(TypePhone, scalar(src["phone"]), "")
	}
	x.add(TypeDeviceID, scalar(ctx.Device.ID), "")
	x.add(TypeAdvertisingID, scalar(ctx.Device.AdvertisingID), "")
	for _, e := range ctx.ExternalIDs {
		coll := strings.ToLower(scalar(e.Collection))
		if coll != "" && coll != "users" {
			continue
		}
		typ := scalar(e.Type)
		if NewIdentifier(typ, "").Type == TypeGroupID {
			continue
		}
		x.add(typ, scalar(e.ID), strings.ToLower(scalar(e.Encoding)))
	}
	return x.ex
}

// extractor collects a message's identifiers in order, without duplicates.
type extractor struct {
	ex   Extracted
	seen map[Identifier]bool
}

func (x *extractor) add(typ, value, enc string) {
	id := NewIdentifier(typ, value)
	if id.Type == "" || id.Value == "" || x.seen[id] || len(x.ex.IDs) >= MaxIdentifiersPerMessage || !withinLimits(id) {
		return
	}
	x.seen[id] = true
	x.ex.IDs = append(x.ex.IDs, id)
	if enc != "" && enc != "none" {
		x.ex.Encoding[id] = enc
	}
}

// decodeContext reads the context fields that hold identifiers. A context of an unexpected
// shape contributes nothing; it is decoded field by field so one bad field does not hide the
// others.
func decodeContext(raw json.RawMessage) contextFields {
	var ctx contextFields
	if len(raw) == 0 {
		return ctx
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(raw, &fields) == nil {
		_ = json.Unmarshal(fields["traits"], &ctx.Traits)
		_ = json.Unmarshal(fields["device"], &ctx.Device)
		_ = json.Unmarshal(fields["externalIds"], &ctx.ExternalIDs)
	}
	return ctx
}

// withinLimits reports whether an identifier respects tracking's key limits; one that does not
// is never looked up or stored (its key could be refused, and it would be no one's identity).
func withinLimits(id Identifier) bool {
	return len(id.Type) <= tracking.MaxIdentifierTypeBytes && len(id.Value) <= max(tracking.MaxIdentifierBytes, tracking.MaxIDBytes) &&
		tracking.ValidUTF8ID(id.Value)
}

// scalar returns a JSON string or number as a string, and "" for anything else.
func scalar(raw json.RawMessage) string { return tracking.Scalar(raw) }
