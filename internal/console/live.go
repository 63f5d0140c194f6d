package console

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/serverless-cdp/cdp/internal/apitypes"
	"github.com/serverless-cdp/cdp/internal/monitor"
)

// livePerSource is how many events of each source the Live events page shows.
const livePerSource = 20

// liveRefresh is the Live events page's polling interval (htmx "every"): each poll costs one
// read of the events stream's tail (cached 2 s, shared by every open page) and one query of
// the rejection samples.
const liveRefresh = "3s"

// liveData is the Live events page's data.
type liveData struct {
	Sources    []apitypes.Source // the filter's choices (the page, not the polled feed)
	Source     string            // the filter ("" for all)
	Paused     bool
	Configured bool // a monitor is wired (else nothing to show)
	Events     []liveEvent
	Rejections []monitor.Rejection
	Updated    time.Time
	Refresh    string
}

// liveEvent is an event with a stable element id (its payload's <details> keeps its open
// state across refreshes: hx-preserve).
type liveEvent struct {
	monitor.Event
	ID string
}

func (s *Server) registerLive() {
	s.page("GET "+Prefix+"/live", s.livePage)
	s.page("GET "+Prefix+"/live/feed", s.liveFeed)
}

// livePage is the whole page: the source filter and the feed.
func (s *Server) livePage(w http.ResponseWriter, r *http.Request) {
	var list apitypes.SourceList
	if err := s.call(r, http.MethodGet, "/admin/v1/sources", nil, &list); err != nil {
		s.render(w, r, "live", errorView("Live events", "live", err))
		return
	}
	d := liveData{Sources: list.Sources, Source: r.URL.Query().Get("source")}
	v := view{Title: "Live events", Active: "live", Data: &d}
	if d.Source != "" && !hasSource(list.Sources, d.Source) {
		v.Error = fmt.Sprintf("There is no source %q: showing every source.", d.Source)
		d.Source = ""
	}
	if err := s.loadFeed(r, &d); err != nil {
		v.Error = err.Error()
	}
	s.render(w, r, "live", v)
}

// liveFeed is the polled fragment: events and rejections.
func (s *Server) liveFeed(w http.ResponseWriter, r *http.Request) {
	d := liveData{Source: r.URL.Query().Get("source"), Paused: r.URL.Query().Get("paused") == "1"}
	v := view{Data: &d}
	if err := s.loadFeed(r, &d); err != nil {
		v.Error = err.Error()
	}
	s.fragment(w, r, "live", "feed", v)
}

func (s *Server) loadFeed(r *http.Request, d *liveData) error {
	d.Refresh, d.Updated = liveRefresh, s.o.Now()
	if s.o.Monitor == nil {
		return nil
	}
	d.Configured = true
	live, err := s.o.Monitor.Live(r.Context(), d.Source, livePerSource)
	if err != nil {
		s.o.Logger.ErrorContext(r.Context(), "console: live events", "err", err)
		return fmt.Errorf("could not read the live events: %w", err)
	}
	d.Rejections = live.Rejections
	for _, e := range live.Events {
		sum := sha256.Sum256([]byte(e.Sequence + "\x00" + e.MessageID)) // retries share a messageId
		d.Events = append(d.Events, liveEvent{Event: e, ID: "ev-" + hex.EncodeToString(sum[:8])})
	}
	return nil
}

// FeedURL is the feed's URL with the filter, paused or not.
func (d *liveData) FeedURL(paused bool) string {
	q := url.Values{}
	if d.Source != "" {
		q.Set("source", d.Source)
	}
	if paused {
		q.Set("paused", "1")
	}
	u := Prefix + "/live/feed"
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

func hasSource(list []apitypes.Source, id string) bool {
	for _, s := range list {
		if s.ID == id {
			return true
		}
	}
	return false
}
