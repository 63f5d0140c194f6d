package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// The Profiles page: look a person up by any identifier (in the query string, never the path)
// and show what the Profile API and the admin API know of them — identifiers, traits, consent,
// computed traits and audiences, the timeline (newest first, paged by the API's cursor) and the
// merge log with the rule of each decision — with buttons that export or delete the person
// through privacy requests.

const (
	profTimelinePage = 20
	profMergePage    = 20
	profMaxRef       = 600 // type (64) + ":" + value (512), with room; the API checks exactly
)

// identifierTypes are the search form's choices (any other type can be typed as type:value).
var profIdentifierTypes = []string{"email", "user_id", "anonymous_id", "phone", "device_id", "advertising_id", "profile_id"}

func (s *Server) registerProfiles() {
	s.page("GET "+Prefix+"/profiles", s.profilesPage)
	s.page("GET "+Prefix+"/profiles/events", s.profileEvents)
	s.page("GET "+Prefix+"/profiles/merges", s.profileMerges)
	s.page("POST "+Prefix+"/profiles/export", s.profilePrivacy("export"))
	s.page("POST "+Prefix+"/profiles/delete", s.profilePrivacy("delete"))
}

// profileSearch is the search form: a type and a value, or a whole "type:value".
type profileSearch struct {
	Type, Value string
	Types       []string
}

// profilePage is the Profiles page's data.
type profilePage struct {
	Search   profileSearch
	Ref      string // the identifier searched, as the Profile API takes it
	NotFound string
	Profile  *profileData
}

// profileData is one profile as the page shows it.
type profileData struct {
	Ref          string // the identifier searched (the privacy forms name it)
	CSRF         string
	Meta         profileMeta
	IDs          []profExternalID
	IDsMore      bool
	Traits       []profKV
	TraitsMore   bool
	Consent      []profConsent
	Audiences    []profAudience
	Computed     []profKV
	SegmentsNote string
	Events       profTimeline
	Merges       profMergeLog
}

// Profile API shapes (the fields the page reads).
type profileMeta struct {
	ID             string   `json:"id"`
	CreatedAt      string   `json:"created_at"`
	UpdatedAt      string   `json:"updated_at"`
	FirstMessageAt string   `json:"first_message_at"`
	LastMessageAt  string   `json:"last_message_at"`
	LastSourceID   string   `json:"last_source_id"`
	EventCount     int64    `json:"event_count"`
	MergedFrom     []string `json:"merged_from"`
}

type profCursor struct {
	HasMore bool   `json:"has_more"`
	Next    string `json:"next"`
}

type profExternalID struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	SourceID  string `json:"source_id"`
	CreatedAt string `json:"created_at"`
	Encoding  string `json:"encoding"`
}

type profKV struct{ Key, Value string }

type profConsent struct {
	Category string
	Granted  bool
	At       string
}

type profAudience struct{ Key, Name, EnteredAt string }

// profTimeline is one page of a profile's events, newest first; Next pages on to older ones.
type profTimeline struct {
	ProfileID string
	Events    []profEvent
	Next      string
}

type profEvent struct{ Time, Type, Name, MessageID, SourceID, Payload string }

// profMergeLog is one page of a profile's merge log, newest first.
type profMergeLog struct {
	ProfileID string
	Entries   []profMergeEntry
	Next      string
}

type profMergeEntry struct {
	Time, MessageID, ProfileID string
	Actions                    []profMergeAction
}

type profMergeAction struct {
	Kind, Rule            string
	Identifiers, Profiles string
	Traits                string
}

// profSearchRef turns the form into the identifier the Profile API takes: ?id=type:value, or
// ?type=…&value=… ("" type: the value is a whole type:value). ref is "" when there is nothing to
// search or the input is bad (msg then says why).
func profSearchRef(q url.Values) (search profileSearch, ref, msg string) {
	search = profileSearch{Type: strings.TrimSpace(q.Get("type")), Value: strings.TrimSpace(q.Get("value")), Types: profIdentifierTypes}
	if id := strings.TrimSpace(q.Get("id")); id != "" && search.Value == "" {
		search.Value = id
		search.Type = ""
	}
	switch {
	case search.Value == "":
		return search, "", ""
	case len(search.Value) > profMaxRef:
		return search, "", fmt.Sprintf("That identifier is over %d bytes: no profile can have it.", profMaxRef)
	case search.Type == "profile_id":
		return search, search.Value, ""
	case search.Type != "":
		return search, search.Type + ":" + strings.TrimPrefix(search.Value, search.Type+":"), ""
	case strings.HasPrefix(search.Value, "use_") && !strings.Contains(search.Value, ":"):
		return search, search.Value, ""
	case !strings.Contains(search.Value, ":"):
		return search, "", "Choose the identifier's type, or type it as type:value (e.g. email:ann@example.com)."
	}
	return search, search.Value, ""
}

// profilesPage shows the search form and, when there is a search, the profile.
func (s *Server) profilesPage(w http.ResponseWriter, r *http.Request) {
	search, ref, msg := profSearchRef(r.URL.Query())
	v := view{Title: "Profiles", Active: "profiles", Error: msg}
	page := profilePage{Search: search, Ref: ref}
	if ref != "" {
		p, err := s.loadProfile(r, ref, r.URL.Query().Get("events_next"))
		switch {
		case IsNotFound(err):
			page.NotFound = "No profile has the identifier " + ref + "."
			privHTMLStatus(w, http.StatusNotFound)
		case err != nil:
			v.Error = err.Error()
		default:
			page.Profile = p
		}
	}
	v.Data = page
	s.render(w, r, "profiles", v)
}

// loadProfile reads everything the page shows about the profile ref names. The first read
// (metadata) resolves ref to the profile's own id, which the other reads use (a direct read,
// not an identifier lookup).
func (s *Server) loadProfile(r *http.Request, ref, eventsNext string) (*profileData, error) {
	var meta struct {
		Metadata profileMeta `json:"metadata"`
	}
	if err := s.call(r, http.MethodGet, s.profilePath(ref, "metadata"), nil, &meta); err != nil {
		return nil, err
	}
	p := &profileData{Ref: ref, CSRF: sessionOf(r).csrf, Meta: meta.Metadata}
	id := p.Meta.ID
	for _, t := range []*string{&p.Meta.CreatedAt, &p.Meta.UpdatedAt, &p.Meta.FirstMessageAt, &p.Meta.LastMessageAt} {
		*t = profTS(*t)
	}
	steps := []func() error{
		func() error { return s.loadIdentifiers(r, id, p) },
		func() error { return s.loadTraits(r, id, p) },
		func() error { return s.loadConsent(r, id, p) },
		func() error { return s.loadSegments(r, id, p) },
		func() (err error) { p.Events, err = s.loadTimeline(r, id, eventsNext); return err },
		func() (err error) { p.Merges, err = s.loadMerges(r, id, ""); return err },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func (s *Server) loadIdentifiers(r *http.Request, id string, p *profileData) error {
	var out struct {
		Data   []profExternalID `json:"data"`
		Cursor profCursor       `json:"cursor"`
	}
	if err := s.call(r, http.MethodGet, s.profilePath(id, "external_ids")+"?limit=100", nil, &out); err != nil {
		return err
	}
	p.IDs, p.IDsMore = out.Data, out.Cursor.HasMore
	for i := range p.IDs {
		p.IDs[i].CreatedAt = profTS(p.IDs[i].CreatedAt)
	}
	return nil
}

func (s *Server) loadTraits(r *http.Request, id string, p *profileData) error {
	var out struct {
		Traits map[string]json.RawMessage `json:"traits"`
		Cursor profCursor                 `json:"cursor"`
	}
	if err := s.call(r, http.MethodGet, s.profilePath(id, "traits")+"?class=user&limit=200", nil, &out); err != nil {
		return err
	}
	p.Traits, p.TraitsMore = profSortedValues(out.Traits), out.Cursor.HasMore
	return nil
}

func (s *Server) loadConsent(r *http.Request, id string, p *profileData) error {
	var out struct {
		Consent map[string]struct {
			Granted bool   `json:"granted"`
			At      string `json:"at"`
		} `json:"consent"`
	}
	if err := s.call(r, http.MethodGet, s.profilePath(id, "consent"), nil, &out); err != nil {
		return err
	}
	for k, c := range out.Consent {
		p.Consent = append(p.Consent, profConsent{Category: k, Granted: c.Granted, At: profTS(c.At)})
	}
	sort.Slice(p.Consent, func(i, j int) bool { return p.Consent[i].Category < p.Consent[j].Category })
	return nil
}

// loadSegments reads the profile's audiences and computed traits from the admin API; a profile
// the segments stage has not seen yet has none (a note says so).
func (s *Server) loadSegments(r *http.Request, id string, p *profileData) error {
	var out struct {
		Audiences []struct {
			Key       string    `json:"key"`
			Name      string    `json:"name"`
			EnteredAt time.Time `json:"enteredAt"`
		} `json:"audiences"`
		ComputedTraits map[string]json.RawMessage `json:"computedTraits"`
	}
	err := s.call(r, http.MethodGet, "/admin/v1/profiles/"+url.PathEscape(id)+"/segments", nil, &out)
	if IsNotFound(err) {
		p.SegmentsNote = "The segments stage has not evaluated this profile yet."
		return nil
	}
	if err != nil {
		return err
	}
	for _, a := range out.Audiences {
		p.Audiences = append(p.Audiences, profAudience{Key: a.Key, Name: a.Name, EnteredAt: a.EnteredAt.UTC().Format(profTSLayout)})
	}
	p.Computed = profSortedValues(out.ComputedTraits)
	return nil
}

// loadTimeline reads one page of the profile's events (newest first) from next ("" for the
// newest).
func (s *Server) loadTimeline(r *http.Request, id, next string) (profTimeline, error) {
	q := url.Values{"limit": {fmt.Sprint(profTimelinePage)}}
	if next != "" {
		q.Set("next", next)
	}
	var out struct {
		Data   []map[string]json.RawMessage `json:"data"`
		Cursor profCursor                   `json:"cursor"`
	}
	if err := s.call(r, http.MethodGet, s.profilePath(id, "events")+"?"+q.Encode(), nil, &out); err != nil {
		return profTimeline{}, err
	}
	t := profTimeline{ProfileID: id}
	if out.Cursor.HasMore {
		t.Next = out.Cursor.Next
	}
	for _, e := range out.Data {
		t.Events = append(t.Events, toTimelineEvent(e))
	}
	return t, nil
}

func toTimelineEvent(e map[string]json.RawMessage) profEvent {
	str := func(k string) string {
		var v string
		_ = json.Unmarshal(e[k], &v)
		return v
	}
	ev := profEvent{Time: profTS(str("timestamp")), Type: str("type"), MessageID: str("message_id"), SourceID: str("source_id")}
	switch ev.Type {
	case "track":
		ev.Name = str("event")
	case "page", "screen":
		ev.Name = str("name")
	}
	if b, err := json.MarshalIndent(e, "", "  "); err == nil {
		ev.Payload = string(b)
	}
	return ev
}

// loadMerges reads one page of the profile's merge log (newest first).
func (s *Server) loadMerges(r *http.Request, id, next string) (profMergeLog, error) {
	q := url.Values{"limit": {fmt.Sprint(profMergePage)}}
	if next != "" {
		q.Set("next", next)
	}
	var out struct {
		Data []struct {
			At        time.Time `json:"at"`
			MessageID string    `json:"messageId"`
			ProfileID string    `json:"profileId"`
			Actions   []struct {
				Kind        string `json:"kind"`
				Identifiers []struct{ Type, Value string }
				Profiles    []string `json:"profiles"`
				Traits      []string `json:"traits"`
				Rule        string   `json:"rule"`
			} `json:"actions"`
		} `json:"data"`
		Cursor profCursor `json:"cursor"`
	}
	if err := s.call(r, http.MethodGet, s.profilePath(id, "merges")+"?"+q.Encode(), nil, &out); err != nil {
		return profMergeLog{}, err
	}
	m := profMergeLog{ProfileID: id}
	if out.Cursor.HasMore {
		m.Next = out.Cursor.Next
	}
	for _, e := range out.Data {
		entry := profMergeEntry{Time: e.At.UTC().Format(profTSLayout), MessageID: e.MessageID, ProfileID: e.ProfileID}
		for _, a := range e.Actions {
			ids := make([]string, 0, len(a.Identifiers))
			for _, i := range a.Identifiers {
				ids = append(ids, i.Type+":"+i.Value)
			}
			entry.Actions = append(entry.Actions, profMergeAction{Kind: a.Kind, Rule: a.Rule, Identifiers: strings.Join(ids, ", "),
				Profiles: strings.Join(a.Profiles, " → "), Traits: strings.Join(a.Traits, ", ")})
		}
		m.Entries = append(m.Entries, entry)
	}
	return m, nil
}

// profileEvents is the timeline's "Older events" (an htmx fragment: more rows).
func (s *Server) profileEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	t, err := s.loadTimeline(r, q.Get("profile"), q.Get("next"))
	if err != nil {
		s.fragment(w, r, "profiles", "rows-error", view{Error: err.Error(), Data: 5})
		return
	}
	s.fragment(w, r, "profiles", "events", view{Data: t})
}

// profileMerges is the merge log's "Older entries" (an htmx fragment: more rows).
func (s *Server) profileMerges(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	m, err := s.loadMerges(r, q.Get("profile"), q.Get("next"))
	if err != nil {
		s.fragment(w, r, "profiles", "rows-error", view{Error: err.Error(), Data: 4})
		return
	}
	s.fragment(w, r, "profiles", "merges", view{Data: m})
}

// profilePrivacy creates an export or delete request for the person the page shows: the
// identifier searched (every profile it resolves to, with those merged into them), or, for a
// search by profile id, the profile's identifiers. A delete needs DELETE typed in the
// confirmation field; without it nothing is requested.
func (s *Server) profilePrivacy(typ string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ref := strings.TrimSpace(r.PostFormValue("id"))
		if typ == "delete" && strings.TrimSpace(r.PostFormValue("confirm")) != "DELETE" {
			s.privacyAnswer(w, r, nil, fmt.Errorf("nothing was deleted: type DELETE in the confirmation field to delete this person"))
			return
		}
		ids, err := s.personIdentifiers(r, ref)
		if err != nil {
			s.privacyAnswer(w, r, nil, err)
			return
		}
		req, err := s.submitPrivacy(r, typ, ids, "console: profile page")
		s.privacyAnswer(w, r, req, err)
	}
}

// personIdentifiers are the identifiers a privacy request from the profile page names.
func (s *Server) personIdentifiers(r *http.Request, ref string) ([]string, error) {
	if ref == "" {
		return nil, fmt.Errorf("no profile: search for one first")
	}
	if typ, _, ok := strings.Cut(ref, ":"); ok && typ != "profile_id" && typ != "segment_id" {
		return []string{ref}, nil
	}
	var out struct {
		Data []profExternalID `json:"data"`
	}
	if err := s.call(r, http.MethodGet, s.profilePath(ref, "external_ids")+"?limit=100", nil, &out); err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(out.Data))
	for _, e := range out.Data {
		ids = append(ids, e.Type+":"+e.ID)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("the profile has no identifiers to name in a privacy request")
	}
	return ids, nil
}

// profTSLayout is how the console shows instants (UTC).
const profTSLayout = "2006-01-02 15:04:05Z"

// profTS shows an RFC 3339 instant of an API answer in profTSLayout ("—" when empty, as given when
// it does not parse).
func profTS(s string) string {
	if s == "" {
		return "—"
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return s
	}
	return t.UTC().Format(profTSLayout)
}

// profSortedValues lists JSON values by key, strings shown bare, anything else as compact JSON.
func profSortedValues(m map[string]json.RawMessage) []profKV {
	out := make([]profKV, 0, len(m))
	for k, raw := range m {
		out = append(out, profKV{Key: k, Value: profJSONText(raw)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

func profJSONText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	b, _ := json.Marshal(v)
	return string(b)
}
