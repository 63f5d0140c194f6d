// Package profile is the Profile API (Segment's shape): read a unified profile's traits,
// external ids, events, metadata and links by any of its identifiers, plus our merge log and
// the person's consent.
//
//	GET /v1/spaces/{space}/collections/users/profiles/{type}:{value}/{traits|external_ids|events|metadata|links|merges|consent}
//
// The profile is addressed by any identifier `type:value` (user_id:abc, anonymous_id:…,
// email:…, or an externalIds type), or by its own id (`use_…`, also as segment_id:use_… or
// profile_id:use_…). A merged-away profile id or identifier reads the survivor. Auth is HTTP
// Basic with an access token as the user name. The package owns no keys: it reads what
// internal/identity stores.
package profile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/serverless-cdp/cdp/internal/httpapi"
	"github.com/serverless-cdp/cdp/internal/identity"
)

// Authorizer checks a Profile API token.
type Authorizer func(ctx context.Context, token string) (bool, error)

// Reader is the read model the Profile API needs, a port this package owns: identity.Store
// implements it on DynamoDB, identity.MemStore in memory (for tests without emulators).
type Reader interface {
	Profile(ctx context.Context, id string) (*identity.Profile, error)
	Lookup(ctx context.Context, id identity.Identifier) (*identity.Profile, error)
	Events(ctx context.Context, p *identity.Profile, page identity.Page) ([]identity.StoredEvent, string, error)
	MergeLog(ctx context.Context, p *identity.Profile, page identity.Page) ([]identity.LogEntry, string, error)
}

// DefaultSpace is the one space of a local or single-tenant deployment.
const DefaultSpace = "default"

// Trait classes of Segment's Profile API `class` filter.
const (
	ClassUser          = "user"
	ClassComputedTrait = "computed_trait"
	ClassAudience      = "audience"
)

// Computed is what the segments stage knows of a profile: computed trait values by key, and
// the keys of the audiences it belongs to.
type Computed struct {
	Traits    map[string]json.RawMessage
	Audiences []string
}

// ComputedReader reads a profile's computed traits and audiences (the segments stage).
type ComputedReader func(ctx context.Context, profileID string) (Computed, error)

// Handler serves the Profile API.
type Handler struct {
	reader   Reader
	auth     Authorizer
	spaces   map[string]bool
	log      *slog.Logger
	computed ComputedReader
}

// WithComputed makes traits include computed traits and audience memberships (`<key>: true`),
// as Segment's Profile API does, filterable with class=user|computed_trait|audience.
func (h *Handler) WithComputed(r ComputedReader) *Handler {
	h.computed = r
	return h
}

// NewHandler returns a handler for the given spaces (none: just DefaultSpace).
func NewHandler(r Reader, auth Authorizer, log *slog.Logger, spaces ...string) *Handler {
	if log == nil {
		log = slog.Default()
	}
	if len(spaces) == 0 {
		spaces = []string{DefaultSpace}
	}
	h := &Handler{reader: r, auth: auth, spaces: map[string]bool{}, log: log}
	for _, s := range spaces {
		h.spaces[s] = true
	}
	return h
}

type apiError struct {
	status        int
	code, message string
}

func (e *apiError) Error() string { return e.message }

func errf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

// Handle serves one API Gateway request through the net/http handler (httpapi.Lambda, the one
// adapter); it never returns an error (failures are 4xx/5xx responses, a panic a 500 through
// httpapi.Recover).
func (h *Handler) Handle(ctx context.Context, req httpapi.Request) (httpapi.Response, error) {
	return httpapi.Recover(h.log, httpapi.Lambda(h))(ctx, req)
}

// ServeHTTP serves the Profile API. Header names are written as they are (Content-Type,
// WWW-Authenticate), so the API Gateway answer carries them unchanged.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, aerr := h.serve(r.Context(), r)
	w.Header()["Content-Type"] = []string{"application/json"}
	if aerr != nil {
		if aerr.status == http.StatusUnauthorized {
			w.Header()["WWW-Authenticate"] = []string{`Basic realm="profiles"`}
		}
		w.WriteHeader(aerr.status)
		_, _ = io.WriteString(w, httpapi.ErrorJSON(aerr.code, aerr.message))
		return
	}
	b, _ := json.Marshal(body)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

func (h *Handler) authorized(ctx context.Context, r *http.Request) *apiError {
	c := httpapi.ParseAuthorization(r.Header.Get("Authorization"))
	if c.Scheme != "basic" {
		return errf(401, "unauthorized", "use HTTP Basic auth with the access token as the user name")
	}
	if c.Malformed {
		return errf(401, "unauthorized", "malformed Basic credentials")
	}
	token := c.User
	if token == "" {
		token = c.Password
	}
	if token == "" {
		return errf(401, "unauthorized", "missing access token")
	}
	ok, err := h.auth(ctx, token)
	if err != nil {
		h.log.Error("profile api auth", "err", err)
		return errf(503, "unavailable", "cannot check the token now; retry")
	}
	if !ok {
		return errf(401, "unauthorized", "invalid access token")
	}
	return nil
}

var resources = map[string]bool{"traits": true, "external_ids": true, "events": true, "metadata": true, "links": true, "merges": true, "consent": true}

func (h *Handler) serve(ctx context.Context, r *http.Request) (any, *apiError) {
	method, path := r.Method, httpapi.RawPath(r)
	if aerr := h.authorized(ctx, r); aerr != nil {
		return nil, aerr
	}
	if method != "" && method != "GET" {
		return nil, errf(405, "method_not_allowed", "the Profile API is read-only: use GET")
	}
	space, ref, resource, ok := parsePath(path)
	if !ok {
		return nil, errf(404, "not_found", "no such route; use /v1/spaces/{space}/collections/users/profiles/{type}:{value}/{traits|external_ids|events|metadata|links|merges|consent}")
	}
	if !h.spaces[space] {
		return nil, errf(404, "not_found", "unknown space %q", space)
	}
	if aerr := checkRef(ref); aerr != nil {
		return nil, aerr
	}
	q := query(r)
	p, err := h.find(ctx, ref)
	if err != nil {
		h.log.Error("profile api read", "err", err)
		return nil, errf(500, "internal", "could not read the profile")
	}
	if p == nil {
		return nil, errf(404, "not_found", "profile %s not found", ref)
	}
	base := strings.TrimSuffix(path, "/")
	switch resource {
	case "traits":
		return h.traits(ctx, p, q, base)
	case "external_ids":
		return h.externalIDs(p, q, base)
	case "events":
		return h.events(ctx, p, q, base)
	case "metadata":
		return map[string]any{"metadata": metadata(p)}, nil
	case "links":
		return links(p), nil
	case "merges":
		return h.merges(ctx, p, q, base)
	case "consent":
		return map[string]any{"consent": consentOf(p)}, nil
	}
	return nil, errf(404, "not_found", "unknown resource")
}

// parsePath splits …/v1/spaces/{space}/collections/users/profiles/{ref}/{resource}; the ref
// may contain slashes and percent-escapes.
func parsePath(path string) (space, ref, resource string, ok bool) {
	path = strings.TrimSuffix(path, "/")
	i := strings.Index(path, "/v1/spaces/")
	if i < 0 {
		return "", "", "", false
	}
	rest := path[i+len("/v1/spaces/"):]
	space, rest, ok = strings.Cut(rest, "/collections/users/profiles/")
	if !ok || space == "" || strings.Contains(space, "/") {
		return "", "", "", false
	}
	j := strings.LastIndex(rest, "/")
	if j <= 0 {
		return "", "", "", false
	}
	ref, resource = rest[:j], rest[j+1:]
	if u, err := url.PathUnescape(ref); err == nil {
		ref = u
	}
	if u, err := url.PathUnescape(space); err == nil {
		space = u
	}
	return space, ref, resource, resources[resource]
}

// query is the query string as the client sent it (httpapi.ToHTTP takes the raw query when it
// parses, else API Gateway's decoded parameters); one that does not parse is ignored.
func query(r *http.Request) url.Values {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return url.Values{}
	}
	return q
}

func (h *Handler) find(ctx context.Context, ref string) (*identity.Profile, error) {
	if strings.HasPrefix(ref, identity.ProfileIDPrefix) && !strings.Contains(ref, ":") {
		return h.reader.Profile(ctx, ref)
	}
	id, ok := identity.ParseIdentifier(ref)
	if !ok {
		return nil, nil
	}
	if id.Type == "segment_id" || id.Type == "profile_id" {
		return h.reader.Profile(ctx, strings.TrimSpace(strings.SplitN(ref, ":", 2)[1]))
	}
	return h.reader.Lookup(ctx, id)
}

func limitParam(q url.Values, def, max int) (int, *apiError) {
	v := q.Get("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		return 0, errf(400, "invalid_limit", "limit must be a whole number from 1 to %d", max)
	}
	return n, nil
}

func listParam(q url.Values, name string) map[string]bool {
	v := q.Get(name)
	if v == "" {
		return nil
	}
	out := map[string]bool{}
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out[s] = true
		}
	}
	return out
}

type cursor struct {
	URL     string `json:"url"`
	HasMore bool   `json:"has_more"`
	Next    string `json:"next"`
}

func makeCursor(base string, q url.Values, next string) cursor {
	if next == "" {
		return cursor{HasMore: false}
	}
	nq := url.Values{}
	for k, v := range q {
		nq[k] = v
	}
	nq.Set("next", next)
	return cursor{URL: base + "?" + nq.Encode(), HasMore: true, Next: next}
}

// traits: include (names), limit (default 10, max 200), next, class (user, computed_trait,
// audience; all when absent). Computed traits and audiences come from the segments stage.
func (h *Handler) traits(ctx context.Context, p *identity.Profile, q url.Values, base string) (any, *apiError) {
	limit, aerr := limitParam(q, 10, 200)
	if aerr != nil {
		return nil, aerr
	}
	include := listParam(q, "include")
	if aerr := checkKeyCursor(q.Get("next")); aerr != nil {
		return nil, aerr
	}
	class := q.Get("class")
	switch class {
	case "", "traits", ClassUser, ClassComputedTrait, ClassAudience:
	default:
		return nil, errf(400, "invalid_request", "class must be user, computed_trait or audience")
	}
	values, aerr := h.traitValues(ctx, p, class)
	if aerr != nil {
		return nil, aerr
	}
	keys := make([]string, 0, len(values))
	for k := range values {
		if include == nil || include[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	after := q.Get("next")
	start := sort.SearchStrings(keys, after)
	if after != "" && start < len(keys) && keys[start] == after {
		start++
	}
	keys = keys[start:]
	next := ""
	if len(keys) > limit {
		keys = keys[:limit]
		next = keys[limit-1]
	}
	out := make(map[string]json.RawMessage, len(keys))
	for _, k := range keys {
		out[k] = values[k]
	}
	return map[string]any{"traits": out, "cursor": makeCursor(base, q, next)}, nil
}

// traitValues collects a profile's trait values of a class ("" for all): its own traits, and
// the computed traits and audience memberships the segments stage knows.
func (h *Handler) traitValues(ctx context.Context, p *identity.Profile, class string) (map[string]json.RawMessage, *apiError) {
	values := map[string]json.RawMessage{}
	if class == "" || class == "traits" || class == ClassUser {
		for k, t := range p.Traits {
			values[k] = t.Value
		}
	}
	if h.computed == nil || (class != "" && class != ClassComputedTrait && class != ClassAudience) {
		return values, nil
	}
	c, err := h.computed(ctx, p.ID)
	if err != nil {
		return nil, errf(503, "unavailable", "computed traits could not be read; retry")
	}
	if class != ClassAudience {
		for k, v := range c.Traits {
			values[k] = v
		}
	}
	if class != ClassComputedTrait {
		for _, k := range c.Audiences {
			values[k] = json.RawMessage("true")
		}
	}
	return values, nil
}

type externalID struct {
	ID         string `json:"id"`
	Type       string `json:"type"`
	SourceID   string `json:"source_id"`
	Collection string `json:"collection"`
	CreatedAt  string `json:"created_at"`
	Encoding   string `json:"encoding"`
}

func toExternal(r identity.IdentifierRecord) externalID {
	enc := r.Encoding
	if enc == "" {
		enc = "none"
	}
	return externalID{ID: r.Value, Type: r.Type, SourceID: r.SourceID, Collection: "users", CreatedAt: ts(r.CreatedAt), Encoding: enc}
}

// external_ids: include (types), limit (default 25, max 100), next.
func (h *Handler) externalIDs(p *identity.Profile, q url.Values, base string) (any, *apiError) {
	limit, aerr := limitParam(q, 25, 100)
	if aerr != nil {
		return nil, aerr
	}
	include := listParam(q, "include")
	after := q.Get("next")
	if aerr := checkKeyCursor(after); aerr != nil {
		return nil, aerr
	}
	var out []externalID
	next := ""
	for _, r := range p.Identifiers {
		if include != nil && !include[r.Type] {
			continue
		}
		if after != "" && r.String() <= after {
			continue
		}
		if len(out) == limit {
			next = out[len(out)-1].Type + ":" + out[len(out)-1].ID
			break
		}
		out = append(out, toExternal(r))
	}
	if out == nil {
		out = []externalID{}
	}
	return map[string]any{"data": out, "cursor": makeCursor(base, q, next)}, nil
}

// events: newest first; limit (default 10, max 100), next, include/exclude (event names).
func (h *Handler) events(ctx context.Context, p *identity.Profile, q url.Values, base string) (any, *apiError) {
	limit, aerr := limitParam(q, 10, 100)
	if aerr != nil {
		return nil, aerr
	}
	include, exclude := listParam(q, "include"), listParam(q, "exclude")
	after, aerr := decodeCursor(q.Get("next"), p, "events")
	if aerr != nil {
		return nil, aerr
	}
	page := identity.Page{Limit: limit, Next: after}
	var out []map[string]any
	next := ""
	for rounds := 0; rounds < 20; rounds++ {
		evs, n, err := h.reader.Events(ctx, p, page)
		if err != nil {
			var ce *identity.CursorError
			if errors.As(err, &ce) {
				return nil, errf(400, "invalid_cursor", "next is not a cursor this API issued")
			}
			h.log.Error("profile api events", "err", err)
			return nil, errf(500, "internal", "could not read events")
		}
		for _, e := range evs {
			name := eventName(e.Message.Type, e.Message.Event, e.Message.Name)
			if (include != nil && !include[name]) || exclude[name] {
				continue
			}
			out = append(out, eventJSON(p.ID, e))
		}
		next = n
		if n == "" || len(out) >= limit || (include == nil && exclude == nil) {
			break
		}
		page.Next = n
	}
	if out == nil {
		out = []map[string]any{}
	}
	return map[string]any{"data": out, "cursor": makeCursor(base, q, encodeCursor(p.ID, "events", next))}, nil
}

func eventName(typ, event, name string) string {
	switch typ {
	case "track":
		return event
	case "page", "screen":
		return name
	}
	return typ
}

func eventJSON(profileID string, e identity.StoredEvent) map[string]any {
	m := e.Message
	var ext []externalID
	if m.UserID != "" {
		ext = append(ext, externalID{ID: m.UserID, Type: identity.TypeUserID, SourceID: e.SourceID, Collection: "users", CreatedAt: ts(m.Timestamp), Encoding: "none"})
	}
	if m.AnonymousID != "" {
		ext = append(ext, externalID{ID: m.AnonymousID, Type: identity.TypeAnonymousID, SourceID: e.SourceID, Collection: "users", CreatedAt: ts(m.Timestamp), Encoding: "none"})
	}
	out := map[string]any{
		"type": m.Type, "message_id": m.MessageID, "source_id": e.SourceID, "timestamp": ts(m.Timestamp),
		"external_ids": ext, "related": map[string]string{"users": profileID},
	}
	set := func(k string, v json.RawMessage) {
		if len(v) > 0 {
			out[k] = v
		}
	}
	set("properties", m.Properties)
	set("traits", m.Traits)
	set("context", m.Context)
	for k, v := range map[string]string{"event": m.Event, "name": m.Name, "category": m.Category, "group_id": m.GroupID, "previous_id": m.PreviousID, "user_id": m.UserID, "anonymous_id": m.AnonymousID} {
		if v != "" {
			out[k] = v
		}
	}
	return out
}

func ts(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func tsOrNil(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return ts(t)
}

func metadata(p *identity.Profile) map[string]any {
	return map[string]any{
		"id": p.ID, "created_at": ts(p.CreatedAt), "updated_at": ts(p.UpdatedAt), "expires_at": nil,
		"first_message_at": tsOrNil(p.FirstMessageAt), "last_message_at": tsOrNil(p.LastMessageAt),
		"last_source_id": p.LastSourceID, "event_count": p.EventCount, "merged_from": nonNil(p.MergedFrom),
	}
}

// consentCategory is one category of the consent resource.
type consentCategory struct {
	Granted bool   `json:"granted"`
	At      string `json:"at"`
}

// consentOf is a profile's consent per category ({} when no event carried preferences).
func consentOf(p *identity.Profile) map[string]consentCategory {
	out := map[string]consentCategory{}
	if p.Consent == nil {
		return out
	}
	for k, c := range p.Consent.Categories {
		out[k] = consentCategory{Granted: c.Granted, At: ts(c.At)}
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// links: the accounts (groups) the user belongs to, as Segment's account links.
func links(p *identity.Profile) any {
	gids := make([]string, 0, len(p.Groups))
	for g := range p.Groups {
		gids = append(gids, g)
	}
	sort.Strings(gids)
	data := make([]map[string]any, 0, len(gids))
	for _, g := range gids {
		var first time.Time
		for _, t := range p.Groups[g] {
			if first.IsZero() || t.At.Before(first) {
				first = t.At
			}
		}
		data = append(data, map[string]any{
			"to_collection": "accounts",
			"external_ids":  []externalID{{ID: g, Type: identity.TypeGroupID, Collection: "accounts", CreatedAt: ts(first), Encoding: "none"}},
			"traits":        identity.TraitValues(p.Groups[g]),
		})
	}
	return map[string]any{"data": data, "cursor": cursor{}}
}

// merges: the merge log of the profile and every profile merged into it, newest first.
func (h *Handler) merges(ctx context.Context, p *identity.Profile, q url.Values, base string) (any, *apiError) {
	limit, aerr := limitParam(q, 10, 100)
	if aerr != nil {
		return nil, aerr
	}
	after, aerr := decodeCursor(q.Get("next"), p, "merges")
	if aerr != nil {
		return nil, aerr
	}
	logs, next, err := h.reader.MergeLog(ctx, p, identity.Page{Limit: limit, Next: after})
	if err != nil {
		var ce *identity.CursorError
		if errors.As(err, &ce) {
			return nil, errf(400, "invalid_cursor", "next is not a cursor this API issued")
		}
		h.log.Error("profile api merges", "err", err)
		return nil, errf(500, "internal", "could not read the merge log")
	}
	if logs == nil {
		logs = []identity.LogEntry{}
	}
	return map[string]any{"data": logs, "cursor": makeCursor(base, q, encodeCursor(p.ID, "merges", next))}, nil
}
