package profile

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"unicode/utf8"

	"github.com/serverless-cdp/cdp/internal/identity"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

// Request limits: nothing over them can name a stored profile (ingest refuses such ids at the
// door), so they are answered 400 without a read, and no invalid key ever reaches DynamoDB.
const (
	// maxRefBytes bounds the {type}:{value} path segment: a type of up to
	// tracking.MaxIdentifierTypeBytes, a colon and a value of up to tracking.MaxIDBytes.
	maxRefBytes = tracking.MaxIdentifierTypeBytes + 1 + tracking.MaxIDBytes
	// maxCursorBytes bounds the `next` query parameter.
	maxCursorBytes = 2048
	// maxSortKeyBytes is DynamoDB's limit on a sort key, which a store cursor decodes to.
	maxSortKeyBytes = 1024
)

// checkRef validates a profile reference from the path: a profile id or a type:value
// identifier within the key limits of package tracking, in valid UTF-8.
func checkRef(ref string) *apiError {
	if !utf8.ValidString(ref) || strings.ContainsRune(ref, utf8.RuneError) {
		return errf(400, "invalid_identifier", "the profile identifier is not valid UTF-8")
	}
	if len(ref) > maxRefBytes {
		return errf(400, "invalid_identifier", "the profile identifier is %d bytes; the limit is %d", len(ref), maxRefBytes)
	}
	typ, value, found := strings.Cut(ref, ":")
	if !found {
		return nil // a bare profile id: bounded by maxRefBytes
	}
	if len(typ) > tracking.MaxIdentifierTypeBytes {
		return errf(400, "invalid_identifier", "the identifier type is %d bytes; the limit is %d", len(typ), tracking.MaxIdentifierTypeBytes)
	}
	if max := max(tracking.MaxIDBytes, tracking.MaxIdentifierBytes); len(value) > max {
		return errf(400, "invalid_identifier", "the identifier value is %d bytes; the limit is %d", len(value), max)
	}
	return nil
}

// pageCursor is the `next` value of the events and merges resources: the store's cursor bound
// to the profile and the resource it pages, so a cursor is only accepted where it was issued.
type pageCursor struct {
	Profile  string `json:"p"`
	Resource string `json:"r"`
	Key      string `json:"k"`
}

func encodeCursor(profileID, resource, storeNext string) string {
	if storeNext == "" {
		return ""
	}
	b, _ := json.Marshal(pageCursor{Profile: profileID, Resource: resource, Key: storeNext})
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor returns the store cursor of a `next` value issued for this profile (or one
// merged into it) and resource, or a 400 invalid_cursor.
func decodeCursor(next string, p *identity.Profile, resource string) (string, *apiError) {
	if next == "" {
		return "", nil
	}
	bad := func(why string) (string, *apiError) {
		return "", errf(400, "invalid_cursor", "next is not a cursor this API issued for this profile's %s (%s)", resource, why)
	}
	if len(next) > maxCursorBytes {
		return bad("too long")
	}
	raw, err := base64.RawURLEncoding.DecodeString(next)
	if err != nil {
		return bad("not base64url")
	}
	var c pageCursor
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil || dec.More() {
		return bad("malformed")
	}
	if c.Resource != resource || !ownsProfile(p, c.Profile) {
		return bad("issued for another profile or resource")
	}
	key, err := base64.RawURLEncoding.DecodeString(c.Key)
	if err != nil || len(key) == 0 || len(key) > maxSortKeyBytes || !utf8.Valid(key) {
		return bad("malformed position")
	}
	return c.Key, nil
}

func ownsProfile(p *identity.Profile, id string) bool {
	if id == p.ID {
		return true
	}
	for _, m := range p.MergedFrom {
		if id == m {
			return true
		}
	}
	return false
}

// checkKeyCursor bounds the `next` of the traits and external_ids resources, which is the last
// trait name or identifier of the previous page (compared in memory, never sent to the store).
func checkKeyCursor(next string) *apiError {
	if len(next) > maxCursorBytes || !utf8.ValidString(next) {
		return errf(400, "invalid_cursor", "next is not a cursor this API issued")
	}
	return nil
}
