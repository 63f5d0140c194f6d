package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/serverless-cdp/cdp/internal/apitypes"
)

// The Destinations pages: the list with each destination's status, counters and its recent
// deliveries as a strip; one destination's settings (everything PUT accepts), enable and
// disable, secret rotation (the new signing secret shown once), its delivery log (status,
// attempts, latency, time; paged) and its dead letters with the reason, a redrive button each
// and "redrive all". Like the Sources page, each action is a form whose answer, the whole
// page, replaces the page's region (#page).

// dstStats are a destination's delivery counters (GET /admin/v1/destinations/{id}).
type dstStats struct {
	Delivered       int64 `json:"delivered"`
	Retried         int64 `json:"retried"`
	DeadLettered    int64 `json:"deadLettered"`
	Redriven        int64 `json:"redriven"`
	FilteredConsent int64 `json:"filteredConsent"`
	DroppedErased   int64 `json:"droppedErased"`
}

// dstDelivery is one row of the delivery log.
type dstDelivery struct {
	RecordID      string     `json:"recordId"`
	WebhookID     string     `json:"webhookId"`
	Kind          string     `json:"kind"`
	Status        string     `json:"status"`
	Attempts      int        `json:"attempts"`
	Retries       int        `json:"retries"`
	LastStatus    int        `json:"lastStatus"`
	LastError     string     `json:"lastError"`
	LatencyMs     int64      `json:"latencyMs"`
	NextAttemptAt *time.Time `json:"nextAttemptAt"`
	CreatedAt     time.Time  `json:"createdAt"`
	UpdatedAt     time.Time  `json:"updatedAt"`
}

// dstDeadLetter is a message that could not be delivered.
type dstDeadLetter struct {
	RecordID   string          `json:"recordId"`
	WebhookID  string          `json:"webhookId"`
	Kind       string          `json:"kind"`
	Attempts   int             `json:"attempts"`
	LastStatus int             `json:"lastStatus"`
	LastError  string          `json:"lastError"`
	DeadAt     time.Time       `json:"deadAt"`
	Payload    json.RawMessage `json:"payload"`
}

// PayloadText is the payload, indented.
func (d dstDeadLetter) PayloadText() string {
	var b bytes.Buffer
	if json.Indent(&b, d.Payload, "", "  ") != nil {
		return string(d.Payload)
	}
	return b.String()
}

// dstRecentN is how many of each destination's latest deliveries the list shows.
const dstRecentN = 20

// dstPageSize is the delivery log's and the dead letters' page size.
const dstPageSize = 20

// dstRow is one destination of the list.
type dstRow struct {
	Dest            apitypes.Destination
	Stats           dstStats
	Strip           dstStrip
	Err             string
	Delivered, Fail int // among the recent deliveries
}

// dstStrip is a small chart of deliveries, oldest left: one bar each, coloured by status.
type dstStrip struct {
	Label string
	Bars  []dstStripBar
	Width int
}

type dstStripBar struct {
	X           int
	Fill, Title string
}

func newDstStrip(ds []dstDelivery) (st dstStrip, delivered, failed int) {
	for i := range ds {
		d := ds[len(ds)-1-i] // the log is newest first
		fill := "#8a8f98"
		switch d.Status {
		case "delivered":
			fill, delivered = "#0a6b2d", delivered+1
		case "dead":
			fill, failed = "#b3261e", failed+1
		case "retrying":
			fill, failed = "#c77700", failed+1
		}
		st.Bars = append(st.Bars, dstStripBar{X: i * 8, Fill: fill, Title: d.Status + " " + d.UpdatedAt.UTC().Format(time.RFC3339)})
	}
	st.Width = max(8, len(ds)*8)
	st.Label = fmt.Sprintf("Last %d deliveries: %d delivered, %d failed or retrying", len(ds), delivered, failed)
	return st, delivered, failed
}

// dstListData is the destinations list.
type dstListData struct {
	Flash, Err string
	Rows       []dstRow
}

// dstForm is the settings form as typed (kept as typed when refused).
type dstForm struct {
	Name, URL, Signing, BatchSize, Timeout, Headers string
	Audiences, Traits, Events, Consent              string
	Privacy, RequireConsent, Enabled                bool
}

// dstData is one destination's page (or the new-destination form when New).
type dstData struct {
	Flash, Err  string
	New         bool
	Dest        apitypes.Destination
	Stats       dstStats
	Form        dstForm
	Secret      *shownKey
	Deliveries  []dstDelivery
	Strip       dstStrip
	DeadLetters []dstDeadLetter
	Next        string // the delivery log's shown page (its token) and the next one
	NextOlder   string
	DLNext      string // the dead letters' shown page and the next one
	DLNextOlder string
	LoadErr     string // the delivery log or dead letters could not be read
}

func (s *Server) registerDestinations() {
	p := Prefix + "/destinations"
	s.page("GET "+p, s.destinationsList)
	s.page("GET "+p+"/new", func(w http.ResponseWriter, r *http.Request) {
		f := dstForm{Signing: "standard", BatchSize: "1", Enabled: true}
		s.answerPage(w, r, "destinations", view{Title: "New destination", Active: "destinations", Data: dstData{New: true, Form: f}}, http.StatusOK)
	})
	s.page("POST "+p, s.createDestination)
	s.page("GET "+p+"/{id}", func(w http.ResponseWriter, r *http.Request) {
		s.destinationPage(w, r, dstData{}, http.StatusOK)
	})
	s.page("POST "+p+"/{id}", s.updateDestination)
	s.page("POST "+p+"/{id}/enable", s.setDestinationEnabled(true))
	s.page("POST "+p+"/{id}/disable", s.setDestinationEnabled(false))
	s.page("POST "+p+"/{id}/rotate", s.rotateDestinationSecret)
	s.page("POST "+p+"/{id}/redrive", s.redriveDeadLetters)
	s.page("POST "+p+"/{id}/delete", s.deleteDestination)
}

func dstPath(id string, rest string) string {
	return apitypes.Prefix + "/destinations/" + url.PathEscape(id) + rest
}

// destinationsList: the list, each destination's counters and latest deliveries (two reads
// per destination besides the list).
func (s *Server) destinationsList(w http.ResponseWriter, r *http.Request) {
	s.destinationsListWith(w, r, dstListData{})
}

func (s *Server) destinationsListWith(w http.ResponseWriter, r *http.Request, d dstListData) {
	var list apitypes.DestinationList
	if err := s.call(r, http.MethodGet, apitypes.Prefix+"/destinations", nil, &list); err != nil {
		s.answerPage(w, r, "destinations", errorView("Destinations", "destinations", err), http.StatusBadGateway)
		return
	}
	for _, dest := range list.Destinations {
		row := dstRow{Dest: dest}
		var full struct {
			Stats dstStats `json:"stats"`
		}
		var page struct {
			Deliveries []dstDelivery `json:"deliveries"`
		}
		err := s.call(r, http.MethodGet, dstPath(dest.ID, ""), nil, &full)
		if err == nil {
			err = s.call(r, http.MethodGet, dstPath(dest.ID, "/deliveries?limit="+strconv.Itoa(dstRecentN)), nil, &page)
		}
		if err != nil {
			row.Err = err.Error()
		}
		row.Stats = full.Stats
		row.Strip, row.Delivered, row.Fail = newDstStrip(page.Deliveries)
		d.Rows = append(d.Rows, row)
	}
	s.answerPage(w, r, "destinations", view{Title: "Destinations", Active: "destinations", Data: d}, http.StatusOK)
}

// destinationPage shows one destination under whatever the action left in d. status is the
// plain answer's status (an action refused: 400); a destination that cannot be read is 404.
func (s *Server) destinationPage(w http.ResponseWriter, r *http.Request, d dstData, status int) {
	id := r.PathValue("id")
	var full struct {
		Destination apitypes.Destination `json:"destination"`
		Stats       dstStats             `json:"stats"`
	}
	if err := s.call(r, http.MethodGet, dstPath(id, ""), nil, &full); err != nil {
		st := http.StatusBadGateway
		if IsNotFound(err) {
			st = http.StatusNotFound
		}
		s.answerPage(w, r, "destinations", errorView("Destination", "destinations", err), st)
		return
	}
	d.Dest, d.Stats = full.Destination, full.Stats
	if d.Form.Name == "" && d.Form.URL == "" {
		d.Form = dstFormOf(d.Dest)
	}
	s.loadLog(r, &d)
	if d.Err != "" && status == http.StatusOK {
		status = http.StatusBadRequest
	}
	s.answerPage(w, r, "destinations", view{Title: d.Dest.Name, Active: "destinations", Data: d}, status)
}

// loadLog reads the shown page of the delivery log (?next=) and of the dead letters (?dlnext=).
func (s *Server) loadLog(r *http.Request, d *dstData) {
	q := r.URL.Query()
	d.Next, d.DLNext = q.Get("next"), q.Get("dlnext")
	var dels struct {
		Deliveries []dstDelivery `json:"deliveries"`
		Next       string        `json:"next"`
	}
	var dls struct {
		DeadLetters []dstDeadLetter `json:"deadLetters"`
		Next        string          `json:"next"`
	}
	page := func(token string) string {
		v := url.Values{"limit": {strconv.Itoa(dstPageSize)}}
		if token != "" {
			v.Set("next", token)
		}
		return "?" + v.Encode()
	}
	err := s.call(r, http.MethodGet, dstPath(d.Dest.ID, "/deliveries"+page(d.Next)), nil, &dels)
	if err == nil {
		err = s.call(r, http.MethodGet, dstPath(d.Dest.ID, "/dead-letters"+page(d.DLNext)), nil, &dls)
	}
	if err != nil {
		d.LoadErr = "Could not read the delivery log: " + err.Error()
	}
	d.Deliveries, d.NextOlder, d.DeadLetters, d.DLNextOlder = dels.Deliveries, dels.Next, dls.DeadLetters, dls.Next
	d.Strip, _, _ = newDstStrip(dels.Deliveries)
}

func (s *Server) createDestination(w http.ResponseWriter, r *http.Request) {
	f := dstFormFromRequest(r)
	spec, err := f.spec()
	if err == nil {
		var out apitypes.CreatedDestination
		if err = s.call(r, http.MethodPost, apitypes.Prefix+"/destinations", spec, &out); err == nil {
			r.SetPathValue("id", out.Destination.ID)
			w.Header().Set("HX-Replace-Url", Prefix+"/destinations/"+url.PathEscape(out.Destination.ID))
			s.destinationPage(w, r, dstData{
				Flash:  fmt.Sprintf("Destination %q created. Copy its signing secret now: it is not shown again.", out.Destination.Name),
				Secret: &shownKey{Of: out.Destination.Name, ID: out.Destination.ID, Secret: out.Secret},
			}, http.StatusOK)
			return
		}
	}
	d := dstData{New: true, Form: f, Err: "The destination was not created: " + err.Error()}
	s.answerPage(w, r, "destinations", view{Title: "New destination", Active: "destinations", Data: d}, http.StatusBadRequest)
}

func (s *Server) updateDestination(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	f := dstFormFromRequest(r)
	var cur apitypes.Destination
	err := s.call(r, http.MethodGet, dstPath(id, ""), nil, &struct {
		D *apitypes.Destination `json:"destination"`
	}{&cur})
	if err != nil {
		s.destinationPage(w, r, dstData{Err: "The settings were not saved: " + err.Error()}, http.StatusOK)
		return
	}
	spec, err := f.spec()
	if err == nil {
		spec.Enabled = &cur.Enabled // the settings form does not enable or disable
		err = s.call(r, http.MethodPut, dstPath(id, ""), spec, nil)
	}
	if err != nil {
		s.destinationPage(w, r, dstData{Form: f, Err: "The settings were not saved: " + err.Error()}, http.StatusOK)
		return
	}
	s.destinationPage(w, r, dstData{Flash: "Settings saved."}, http.StatusOK)
}

func (s *Server) setDestinationEnabled(enabled bool) http.HandlerFunc {
	verb, done := "disable", "Disabled: nothing is sent to it; its messages wait in the retry queue."
	if enabled {
		verb, done = "enable", "Enabled."
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if err := s.call(r, http.MethodPost, dstPath(r.PathValue("id"), "/"+verb), nil, nil); err != nil {
			s.destinationPage(w, r, dstData{Err: fmt.Sprintf("Could not %s the destination: %s", verb, err)}, http.StatusOK)
			return
		}
		s.destinationPage(w, r, dstData{Flash: done}, http.StatusOK)
	}
}

// dstGraces are the rotate form's choices: how long the previous secret keeps signing (the
// API's graceSeconds: 0 is 24 h, negative stops it at once).
func dstGraces() map[string]int64 { return map[string]int64{"86400": 0, "3600": 3600, "now": -1} }

func (s *Server) rotateDestinationSecret(w http.ResponseWriter, r *http.Request) {
	grace, ok := dstGraces()[r.PostFormValue("grace")]
	if !ok {
		s.destinationPage(w, r, dstData{Err: "Choose how long the previous secret keeps signing."}, http.StatusOK)
		return
	}
	var out apitypes.CreatedDestination
	if err := s.call(r, http.MethodPost, dstPath(r.PathValue("id"), "/rotate-secret"), map[string]int64{"graceSeconds": grace}, &out); err != nil {
		s.destinationPage(w, r, dstData{Err: "The secret was not rotated: " + err.Error()}, http.StatusOK)
		return
	}
	s.destinationPage(w, r, dstData{
		Flash:  "New signing secret made. Copy it now: it is not shown again.",
		Secret: &shownKey{Of: out.Destination.Name, ID: out.Destination.ID, Secret: out.Secret},
	}, http.StatusOK)
}

// redriveDeadLetters queues one dead letter (form field record) or all of them again.
func (s *Server) redriveDeadLetters(w http.ResponseWriter, r *http.Request) {
	id, rec := r.PathValue("id"), r.PostFormValue("record")
	path := dstPath(id, "/dead-letters/redrive")
	if rec != "" {
		path = dstPath(id, "/dead-letters/"+url.PathEscape(rec)+"/redrive")
	}
	var out struct {
		Redriven int `json:"redriven"`
	}
	if err := s.call(r, http.MethodPost, path, nil, &out); err != nil {
		s.destinationPage(w, r, dstData{Err: "Nothing was redriven: " + err.Error()}, http.StatusOK)
		return
	}
	s.destinationPage(w, r, dstData{Flash: fmt.Sprintf("%d dead letter(s) queued for delivery again; the retrier sends them within a minute.", out.Redriven)}, http.StatusOK)
}

func (s *Server) deleteDestination(w http.ResponseWriter, r *http.Request) {
	if r.PostFormValue("confirm") != "delete" {
		s.destinationPage(w, r, dstData{Err: `Type "delete" to confirm.`}, http.StatusOK)
		return
	}
	if err := s.call(r, http.MethodDelete, dstPath(r.PathValue("id"), ""), nil, nil); err != nil {
		s.destinationPage(w, r, dstData{Err: "The destination was not deleted: " + err.Error()}, http.StatusOK)
		return
	}
	w.Header().Set("HX-Replace-Url", Prefix+"/destinations")
	s.destinationsListWith(w, r, dstListData{Flash: "Destination deleted; nothing more is sent to it."})
}

// dstFormOf is the settings form of a destination.
func dstFormOf(d apitypes.Destination) dstForm {
	f := dstForm{Name: d.Name, URL: d.URL, Signing: d.Signing, BatchSize: strconv.Itoa(d.BatchSize),
		Audiences: strings.Join(d.Subscriptions.Audiences, ", "), Traits: strings.Join(d.Subscriptions.Traits, ", "),
		Consent: strings.Join(d.ConsentCategories, ", "), Privacy: d.Subscriptions.Privacy, RequireConsent: d.RequireConsent, Enabled: d.Enabled}
	if d.TimeoutSeconds > 0 {
		f.Timeout = strconv.Itoa(d.TimeoutSeconds)
	}
	var hs []string
	for k, v := range d.Headers {
		hs = append(hs, k+": "+v)
	}
	slices.Sort(hs)
	f.Headers = strings.Join(hs, "\n")
	if len(d.Subscriptions.Events) > 0 {
		b, _ := json.MarshalIndent(d.Subscriptions.Events, "", "  ")
		f.Events = string(b)
	}
	return f
}

func dstFormFromRequest(r *http.Request) dstForm {
	v := func(k string) string { return strings.TrimSpace(r.PostFormValue(k)) }
	return dstForm{Name: v("name"), URL: v("url"), Signing: v("signing"), BatchSize: v("batchSize"), Timeout: v("timeoutSeconds"),
		Headers: v("headers"), Audiences: v("audiences"), Traits: v("traits"), Events: v("events"), Consent: v("consentCategories"),
		Privacy: r.PostFormValue("privacy") == "on", RequireConsent: r.PostFormValue("requireConsent") == "on", Enabled: r.PostFormValue("enabled") == "on"}
}

// spec turns the form into the API's definition; a field that cannot be read is an error
// naming it (and nothing is sent).
func (f dstForm) spec() (apitypes.DestinationSpec, error) {
	enabled := f.Enabled
	spec := apitypes.DestinationSpec{Name: f.Name, URL: f.URL, Signing: f.Signing, Enabled: &enabled, RequireConsent: f.RequireConsent,
		ConsentCategories: dstSplitList(f.Consent),
		Subscriptions:     apitypes.Subscriptions{Audiences: dstSplitList(f.Audiences), Traits: dstSplitList(f.Traits), Privacy: f.Privacy}}
	var err error
	if spec.BatchSize, err = dstOptionalInt("batch size", f.BatchSize); err != nil {
		return spec, err
	}
	if spec.TimeoutSeconds, err = dstOptionalInt("timeout", f.Timeout); err != nil {
		return spec, err
	}
	if spec.Headers, err = dstParseHeaders(f.Headers); err != nil {
		return spec, err
	}
	if f.Events != "" {
		dec := json.NewDecoder(strings.NewReader(f.Events))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&spec.Subscriptions.Events); err != nil {
			return spec, fmt.Errorf(`events must be a JSON list of filters like [{"type":"track","name":"Order Completed"}]: %v`, err)
		}
	}
	return spec, nil
}

func dstOptionalInt(what, s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%s must be a whole number, not %q", what, s)
	}
	return n, nil
}

// dstSplitList splits a comma- or line-separated list, dropping blanks.
func dstSplitList(s string) []string {
	var out []string
	for _, p := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' }) {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// dstParseHeaders reads "Name: value" lines.
func dstParseHeaders(s string) (map[string]string, error) {
	var out map[string]string
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("headers: write one \"Name: value\" per line (%q is not)", line)
		}
		if out == nil {
			out = map[string]string{}
		}
		out[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return out, nil
}

// IsList tells the template which page it renders.
func (dstListData) IsList() bool { return true }

// RecentN is how many deliveries the list's strips show.
func (dstListData) RecentN() int { return dstRecentN }

// IsList tells the template which page it renders.
func (dstData) IsList() bool { return false }

// PageSize is the delivery log's page size.
func (dstData) PageSize() int { return dstPageSize }

// RecentOK is the share of the recent deliveries that were delivered.
func (r dstRow) RecentOK() string {
	if r.Delivered+r.Fail == 0 {
		return ""
	}
	return fmt.Sprintf("%.0f%% delivered", 100*float64(r.Delivered)/float64(r.Delivered+r.Fail))
}

// StatusClass is the badge colour of a delivery status.
func (d dstDelivery) StatusClass() string {
	switch d.Status {
	case "delivered":
		return "ok"
	case "dead":
		return "bad"
	case "retrying":
		return "warn"
	}
	return "muted"
}
