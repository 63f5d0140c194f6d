// Package importer turns the rows of a CSV or JSONL file into tracking messages and sends them
// through the tracking API's batch endpoint (/v1/import), so imported rows take the same path as
// live events. It is pure client code: the cdp CLI links it, and it links no server package.
//
// Idempotence: every row gets a stable messageId (from a declared id column, else from the
// mapping and the row's content), and the identity stage drops a (source, messageId) it has
// already stored, so a file sent twice, or resent after an interruption, stores each row once.
// Resumption: a checkpoint file records how many rows were acknowledged; a rerun skips them.
package importer

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Value types a trait or property column is converted to.
const (
	TypeString = "string"
	TypeNumber = "number"
	TypeBool   = "bool"
	TypeTime   = "time"
)

// Call types an import can send.
const (
	CallIdentify = "identify"
	CallTrack    = "track"
	CallPage     = "page"
)

// Mapping says how a row becomes a message: which column holds each id, the call type, and which
// columns are traits (identify) or properties (track, page), each with its value type.
type Mapping struct {
	Type        string            `json:"type" yaml:"type"`
	UserID      string            `json:"userId,omitempty" yaml:"userId"`
	AnonymousID string            `json:"anonymousId,omitempty" yaml:"anonymousId"`
	Email       string            `json:"email,omitempty" yaml:"email"`
	Timestamp   string            `json:"timestamp,omitempty" yaml:"timestamp"`
	MessageID   string            `json:"messageId,omitempty" yaml:"messageId"`
	Event       string            `json:"event,omitempty" yaml:"event"`         // column of the event name (track)
	EventName   string            `json:"eventName,omitempty" yaml:"eventName"` // or one name for every row
	Name        string            `json:"name,omitempty" yaml:"name"`           // column of the page name
	Traits      map[string]string `json:"traits,omitempty" yaml:"traits"`
	Properties  map[string]string `json:"properties,omitempty" yaml:"properties"`
}

// LoadMapping reads a mapping file (YAML or JSON; JSON is YAML).
func LoadMapping(path string) (Mapping, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Mapping{}, fmt.Errorf("read mapping: %w", err)
	}
	var m Mapping
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	dec.KnownFields(true)
	if err := dec.Decode(&m); err != nil {
		return Mapping{}, fmt.Errorf("mapping %s: %w", path, err)
	}
	return m, m.Validate()
}

// ParseMap builds a mapping from --map KEY=VALUE settings: type, userId, anonymousId, email,
// timestamp, messageId, event, eventName, name name one column (or value); traits and
// properties take a comma list of COLUMN[:TYPE] (TYPE string, number, bool or time).
func ParseMap(settings []string) (Mapping, error) {
	var m Mapping
	for _, s := range settings {
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			return Mapping{}, fmt.Errorf("--map %q: want KEY=VALUE", s)
		}
		if err := m.set(strings.TrimSpace(k), strings.TrimSpace(v)); err != nil {
			return Mapping{}, err
		}
	}
	return m, m.Validate()
}

func (m *Mapping) set(k, v string) error {
	fields := map[string]*string{
		"type": &m.Type, "userId": &m.UserID, "anonymousId": &m.AnonymousID, "email": &m.Email,
		"timestamp": &m.Timestamp, "messageId": &m.MessageID, "event": &m.Event,
		"eventName": &m.EventName, "name": &m.Name,
	}
	if p, ok := fields[k]; ok {
		*p = v
		return nil
	}
	var dst *map[string]string
	switch k {
	case "traits":
		dst = &m.Traits
	case "properties":
		dst = &m.Properties
	default:
		return fmt.Errorf("--map: unknown key %q", k)
	}
	if *dst == nil {
		*dst = map[string]string{}
	}
	for _, c := range strings.Split(v, ",") {
		col, typ, _ := strings.Cut(strings.TrimSpace(c), ":")
		if typ == "" {
			typ = TypeString
		}
		(*dst)[col] = typ
	}
	return nil
}

// Validate checks that the mapping can make valid messages.
func (m Mapping) Validate() error {
	var errs []error
	switch m.Type {
	case CallIdentify, CallPage:
	case CallTrack:
		if (m.Event == "") == (m.EventName == "") {
			errs = append(errs, errors.New("a track import needs one of event (a column) or eventName (a name)"))
		}
	default:
		errs = append(errs, fmt.Errorf("type %q: want identify, track or page", m.Type))
	}
	if m.UserID == "" && m.AnonymousID == "" {
		errs = append(errs, errors.New("map a userId or an anonymousId column"))
	}
	if m.Type == CallIdentify && len(m.Properties) > 0 {
		errs = append(errs, errors.New("identify takes traits, not properties"))
	}
	if m.Type != CallIdentify && len(m.Traits) > 0 {
		errs = append(errs, fmt.Errorf("%s takes properties, not traits", m.Type))
	}
	for _, group := range []map[string]string{m.Traits, m.Properties} {
		for col, typ := range group {
			if col == "" {
				errs = append(errs, errors.New("an empty column name among traits or properties"))
			}
			if !slices.Contains([]string{TypeString, TypeNumber, TypeBool, TypeTime}, typ) {
				errs = append(errs, fmt.Errorf("column %q: type %q is not string, number, bool or time", col, typ))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("mapping: %w", err)
	}
	return nil
}

// Columns lists every column the mapping reads.
func (m Mapping) Columns() []string {
	var cols []string
	for _, c := range []string{m.UserID, m.AnonymousID, m.Email, m.Timestamp, m.MessageID, m.Event, m.Name} {
		if c != "" {
			cols = append(cols, c)
		}
	}
	for _, g := range []map[string]string{m.Traits, m.Properties} {
		for c := range g {
			cols = append(cols, c)
		}
	}
	slices.Sort(cols)
	return slices.Compact(cols)
}

// Fingerprint identifies the mapping (its canonical JSON's sha256): the same file under another
// mapping makes other messages, with other ids, and another checkpoint.
func (m Mapping) Fingerprint() string {
	b, _ := json.Marshal(m) // map keys are sorted: canonical
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
