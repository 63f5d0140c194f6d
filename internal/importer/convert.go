package importer

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits of one row, the tracking API's (internal/tracking): ids and identifiers up to 512 bytes
// of valid UTF-8, an event or page name up to 1,024 bytes, an encoded message up to 32 KB.
const (
	MaxIDBytes    = 512
	MaxNameBytes  = 1024
	MaxEventBytes = 32 << 10
)

// RowError is why one row was not imported. It names the line and the column, never the row's
// values (which are personal data).
type RowError struct {
	Line   int
	Column string
	Reason string
}

func (e RowError) Error() string {
	if e.Column == "" {
		return fmt.Sprintf("line %d: %s", e.Line, e.Reason)
	}
	return fmt.Sprintf("line %d: column %q: %s", e.Line, e.Column, e.Reason)
}

// Converter makes the message of each row. It is stateful (it counts identical rows, see ID), so
// one converter reads one file from its first row, including the rows a resumed run skips.
type Converter struct {
	m    Mapping
	fp   string
	seen map[[16]byte]uint32
}

// NewConverter returns a converter for a valid mapping.
func NewConverter(m Mapping) *Converter {
	return &Converter{m: m, fp: m.Fingerprint(), seen: map[[16]byte]uint32{}}
}

// Convert returns the JSON of the row's message (a /v1/import batch item).
func (c *Converter) Convert(r Row) ([]byte, *RowError) {
	if r.Err != nil {
		return nil, &RowError{Line: r.Line, Reason: r.Err.Error()}
	}
	fail := func(col, reason string) ([]byte, *RowError) {
		return nil, &RowError{Line: r.Line, Column: col, Reason: reason}
	}
	msg := map[string]any{"type": c.m.Type, "messageId": c.messageID(r)}
	ids := []struct{ key, col string }{{"userId", c.m.UserID}, {"anonymousId", c.m.AnonymousID}}
	for _, f := range ids {
		v, err := idValue(r.Values, f.col, MaxIDBytes)
		if err != "" {
			return fail(f.col, err)
		}
		if v != "" {
			msg[f.key] = v
		}
	}
	if msg["userId"] == nil && msg["anonymousId"] == nil {
		return fail("", "no userId or anonymousId: "+strings.Trim(c.m.UserID+", "+c.m.AnonymousID, ", ")+" empty")
	}
	if rerr := c.fill(r, msg); rerr != nil {
		return nil, rerr
	}
	b, err := json.Marshal(msg)
	if err != nil {
		return fail("", "cannot be encoded as JSON")
	}
	if len(b) > MaxEventBytes {
		return fail("", fmt.Sprintf("the message is %d bytes; the limit is %d", len(b), MaxEventBytes))
	}
	return b, nil
}

// fill sets the event name, the timestamp, the email and the traits or properties.
func (c *Converter) fill(r Row, msg map[string]any) *RowError {
	fail := func(col, reason string) *RowError { return &RowError{Line: r.Line, Column: col, Reason: reason} }
	if c.m.Type == CallTrack {
		name := c.m.EventName
		if c.m.Event != "" {
			v, err := idValue(r.Values, c.m.Event, MaxNameBytes)
			if err != "" {
				return fail(c.m.Event, err)
			}
			if name = v; name == "" {
				return fail(c.m.Event, "empty: a track needs an event name")
			}
		}
		msg["event"] = name
	}
	if c.m.Name != "" {
		v, err := idValue(r.Values, c.m.Name, MaxNameBytes)
		if err != "" {
			return fail(c.m.Name, err)
		}
		if v != "" {
			msg["name"] = v
		}
	}
	if c.m.Timestamp != "" {
		v, err := convert(r.Values[c.m.Timestamp], TypeTime)
		if err != "" {
			return fail(c.m.Timestamp, err)
		}
		if v != nil {
			msg["timestamp"] = v
		}
	}
	group, key := c.m.Properties, "properties"
	if c.m.Type == CallIdentify {
		group, key = c.m.Traits, "traits"
	}
	obj := make(map[string]any, len(group)+1)
	for col, typ := range group {
		v, err := convert(r.Values[col], typ)
		if err != "" {
			return fail(col, err)
		}
		if v != nil {
			obj[col] = v
		}
	}
	return c.email(r, msg, key, obj)
}

// email puts the email in traits (identify) or context.traits (track, page), where the identity
// stage reads identifiers.
func (c *Converter) email(r Row, msg map[string]any, key string, obj map[string]any) *RowError {
	if c.m.Email != "" {
		v, err := idValue(r.Values, c.m.Email, MaxIDBytes)
		if err != "" {
			return &RowError{Line: r.Line, Column: c.m.Email, Reason: err}
		}
		switch {
		case v == "":
		case key == "traits":
			obj["email"] = v
		default:
			msg["context"] = map[string]any{"traits": map[string]any{"email": v}}
		}
	}
	if len(obj) > 0 {
		msg[key] = obj
	}
	return nil
}

// messageID is the row's stable id. With a declared id column it is derived from that column's
// value (and the call type and event name, so an order id and a customer id never collide);
// otherwise from the mapping, the row's content and how many identical rows came before it, so
// two identical rows are two messages and a rerun makes the same ids in the same order.
func (c *Converter) messageID(r Row) string {
	h := sha256.New()
	if c.m.MessageID != "" {
		if v, _ := idValue(r.Values, c.m.MessageID, math.MaxInt); v != "" {
			ev, _ := idValue(r.Values, c.m.Event, MaxNameBytes)
			fmt.Fprintf(h, "id\x00%s\x00%s%s\x00%s", c.m.Type, c.m.EventName, ev, v)
			return "imp-" + hex.EncodeToString(h.Sum(nil)[:20])
		}
	}
	content := sha256.Sum256(r.Content)
	var k [16]byte
	copy(k[:], content[:16])
	n := c.seen[k]
	c.seen[k] = n + 1
	h.Write([]byte("row\x00" + c.fp + "\x00"))
	h.Write(content[:])
	_ = binary.Write(h, binary.BigEndian, n)
	return "imp-" + hex.EncodeToString(h.Sum(nil)[:20])
}

// idValue reads a column as an id or name: a string (or a number's text) of valid UTF-8 within
// max bytes. It returns "" for an absent or empty column, and a reason for a bad value.
func idValue(vals map[string]any, col string, max int) (string, string) {
	if col == "" {
		return "", ""
	}
	var s string
	switch v := vals[col].(type) {
	case nil:
		return "", ""
	case string:
		s = strings.TrimSpace(v)
	case json.Number:
		s = v.String()
	default:
		return "", "not a string"
	}
	if len(s) > max {
		return "", fmt.Sprintf("%d bytes; the limit is %d", len(s), max)
	}
	if !utf8.ValidString(s) || strings.ContainsRune(s, utf8.RuneError) {
		return "", "not valid UTF-8"
	}
	return s, ""
}

// timeLayouts are the timestamp forms a time column may take (read as UTC without a zone).
var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999", "2006-01-02"}

// convert converts a cell to typ. An empty cell or JSON null is nil (the field is left out).
func convert(v any, typ string) (any, string) {
	if v == nil {
		return nil, ""
	}
	if s, ok := v.(string); ok {
		if s = strings.TrimSpace(s); s == "" {
			return nil, ""
		}
		return convertString(s, typ)
	}
	switch typ {
	case TypeNumber:
		if n, ok := v.(json.Number); ok {
			return n, ""
		}
	case TypeBool:
		if b, ok := v.(bool); ok {
			return b, ""
		}
	case TypeString:
		if n, ok := v.(json.Number); ok {
			return n.String(), ""
		}
		if b, ok := v.(bool); ok {
			return strconv.FormatBool(b), ""
		}
	}
	return nil, "not a " + typ
}

func convertString(s, typ string) (any, string) {
	switch typ {
	case TypeNumber:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, "not a number"
		}
		return json.Number(strconv.FormatFloat(f, 'g', -1, 64)), ""
	case TypeBool:
		b, err := strconv.ParseBool(strings.ToLower(s))
		if err != nil {
			return nil, "not a bool (true/false, 1/0)"
		}
		return b, ""
	case TypeTime:
		for _, l := range timeLayouts {
			if t, err := time.Parse(l, s); err == nil {
				if y := t.UTC().Year(); y < 1 || y > 9999 || t.IsZero() {
					return nil, "a time outside the years 0001–9999"
				}
				return t.UTC().Format(time.RFC3339Nano), ""
			}
		}
		return nil, "not a time (ISO 8601, e.g. 2024-05-01T10:00:00Z or 2024-05-01)"
	}
	if !utf8.ValidString(s) {
		return nil, "not valid UTF-8"
	}
	return s, ""
}
