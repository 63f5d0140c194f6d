package tracking

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Key limits: every value that becomes part of a storage key (a DynamoDB partition or sort key,
// a Kinesis partition key, a dead-letter or attempt-counter key) has a maximum length, checked
// at the door by ingest and again by every stage that reads a record (records can also arrive by
// replay or import). DynamoDB refuses partition keys over 2,048 bytes and sort keys over 1,024;
// Kinesis refuses partition keys over 256 characters (ingest hashes longer ones).
const (
	// MaxIDBytes bounds messageId, userId, anonymousId, groupId and previousId.
	MaxIDBytes = 512
	// MaxIdentifierBytes bounds every identifier value taken from a message: traits.email,
	// traits.phone, context.traits.email and .phone, context.device.id and .advertisingId,
	// and context.externalIds[].id.
	MaxIdentifierBytes = 512
	// MaxIdentifierTypeBytes bounds context.externalIds[].type.
	MaxIdentifierTypeBytes = 64
	// MaxNameBytes bounds the event name (track) and the page or screen name.
	MaxNameBytes = 1024
)

// ValidUTF8ID reports whether s can be used as an id: valid UTF-8 that does not contain the
// replacement character U+FFFD. encoding/json turns invalid UTF-8 bytes and lone surrogate
// escapes into U+FFFD, so two different ids a client sent (`u\xff`, `u\xfe`) would otherwise
// become the same id and two strangers would share a profile.
func ValidUTF8ID(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, utf8.RuneError)
}

// CheckKeys checks the key-bearing fields of a message against the limits above. It returns
// a *Error with code invalid_field naming the field, or nil.
func CheckKeys(m *Message) error {
	for _, f := range []struct{ name, value string }{
		{"messageId", m.MessageID}, {"userId", m.UserID}, {"anonymousId", m.AnonymousID},
		{"groupId", m.GroupID}, {"previousId", m.PreviousID},
	} {
		if err := checkID(f.name, f.value, MaxIDBytes); err != nil {
			return err
		}
	}
	if len(m.Event) > MaxNameBytes {
		return errorf(CodeInvalidField, "event is %d bytes; the limit is %d", len(m.Event), MaxNameBytes)
	}
	if len(m.Name) > MaxNameBytes {
		return errorf(CodeInvalidField, "name is %d bytes; the limit is %d", len(m.Name), MaxNameBytes)
	}
	if m.Type == TypeIdentify {
		if err := checkTraitIDs("traits", m.Traits); err != nil {
			return err
		}
	}
	return checkContextIDs(m.Context)
}

func checkID(name, value string, max int) error {
	if len(value) > max {
		return errorf(CodeInvalidField, "%s is %d bytes; the limit is %d", name, len(value), max)
	}
	if value != "" && !ValidUTF8ID(value) {
		return errorf(CodeInvalidField, "%s is not valid UTF-8 (or contains U+FFFD)", name)
	}
	return nil
}

// keyFields are the fields of context an identifier can come from.
type keyFields struct {
	Traits json.RawMessage `json:"traits"`
	Device struct {
		ID            json.RawMessage `json:"id"`
		AdvertisingID json.RawMessage `json:"advertisingId"`
	} `json:"device"`
	ExternalIDs []struct {
		ID   json.RawMessage `json:"id"`
		Type json.RawMessage `json:"type"`
	} `json:"externalIds"`
}

func checkTraitIDs(where string, traits json.RawMessage) error {
	if isNull(traits) {
		return nil
	}
	var t map[string]json.RawMessage
	if json.Unmarshal(traits, &t) != nil {
		return nil // not an object: contributes no identifier
	}
	for _, k := range []string{"email", "phone"} {
		if err := checkID(where+"."+k, Scalar(t[k]), MaxIdentifierBytes); err != nil {
			return err
		}
	}
	return nil
}

func checkContextIDs(ctx json.RawMessage) error {
	if isNull(ctx) {
		return nil
	}
	var raw map[string]json.RawMessage
	if json.Unmarshal(ctx, &raw) != nil {
		return nil
	}
	var k keyFields
	_ = json.Unmarshal(raw["device"], &k.Device)
	_ = json.Unmarshal(raw["externalIds"], &k.ExternalIDs)
	if err := checkTraitIDs("context.traits", raw["traits"]); err != nil {
		return err
	}
	if err := checkID("context.device.id", Scalar(k.Device.ID), MaxIdentifierBytes); err != nil {
		return err
	}
	if err := checkID("context.device.advertisingId", Scalar(k.Device.AdvertisingID), MaxIdentifierBytes); err != nil {
		return err
	}
	for i, e := range k.ExternalIDs {
		if err := checkID(fmt.Sprintf("context.externalIds[%d].id", i), Scalar(e.ID), MaxIdentifierBytes); err != nil {
			return err
		}
		if err := checkID(fmt.Sprintf("context.externalIds[%d].type", i), Scalar(e.Type), MaxIdentifierTypeBytes); err != nil {
			return err
		}
	}
	return nil
}

// Scalar returns a JSON string's value or a finite number's text as sent, and "" for anything
// else (objects, arrays, booleans, null). Identifiers are read from raw JSON this way.
func Scalar(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if dec.Decode(&n) == nil {
		if _, err := strconv.ParseFloat(n.String(), 64); err == nil {
			return n.String()
		}
	}
	return ""
}
