package console

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/serverless-cdp/cdp/internal/apitypes"
)

// The Sources page: every source with its status and working write keys; create a source,
// disable and enable it, rotate its write key. A new key is shown once (the admin API stores
// only its hash), with a copy button and the analytics.js code to paste, pointed at this
// deployment.
//
// Every action is a plain form (it works without JavaScript) that htmx posts and whose answer,
// the whole page, replaces the page's region (#page, aria-live): the address stays the page's,
// so a reload never posts again.

// sourcesData is the Sources page.
type sourcesData struct {
	Flash, Err string
	Sources    []apitypes.Source
	Key        *shownKey // a write key made by this request, shown once
	Name       string    // the create form's name, kept when it was refused
}

// shownKey is a secret shown once: the source or destination it belongs to, the secret and,
// for a write key, the code to paste.
type shownKey struct {
	Of, ID, Secret, Snippet string
}

// sourceGrace is a choice of the rotate form: how long the previous keys keep working.
type sourceGrace struct {
	seconds int64
	label   string
}

// sourceGraces are the rotate form's choices, by form value.
func sourceGraces() map[string]sourceGrace {
	return map[string]sourceGrace{"0": {0, ""}, "3600": {3600, "1 hour"}, "86400": {86400, "24 hours"}, "604800": {604800, "7 days"}}
}

func (s *Server) registerSources() {
	s.page("GET "+Prefix+"/sources", func(w http.ResponseWriter, r *http.Request) {
		s.sourcesPage(w, r, sourcesData{}, http.StatusOK)
	})
	s.page("POST "+Prefix+"/sources", s.createSource)
	s.page("POST "+Prefix+"/sources/enable", s.setSourceEnabled(true))
	s.page("POST "+Prefix+"/sources/disable", s.setSourceEnabled(false))
	s.page("POST "+Prefix+"/sources/rotate", s.rotateSourceKey)
}

// sourcesPage lists the sources under whatever the action left in d.
func (s *Server) sourcesPage(w http.ResponseWriter, r *http.Request, d sourcesData, status int) {
	var list apitypes.SourceList
	if err := s.call(r, http.MethodGet, apitypes.Prefix+"/sources", nil, &list); err != nil {
		s.answerPage(w, r, "sources", errorView("Sources", "sources", err), http.StatusBadGateway)
		return
	}
	d.Sources = list.Sources
	if d.Err != "" && status == http.StatusOK {
		status = http.StatusBadRequest
	}
	s.answerPage(w, r, "sources", view{Title: "Sources", Active: "sources", Data: d}, status)
}

// answerPage renders a whole page as the answer of a page view or an action. An htmx request
// always gets 200 (htmx swaps no error answer in); a plain one gets status.
func (s *Server) answerPage(w http.ResponseWriter, r *http.Request, page string, v view, status int) {
	if status != http.StatusOK && r.Header.Get("HX-Request") == "" {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(status)
	}
	s.render(w, r, page, v)
}

func (s *Server) createSource(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimSpace(r.PostFormValue("name"))
	var out apitypes.SourceWithKey
	if err := s.call(r, http.MethodPost, apitypes.Prefix+"/sources", apitypes.CreateSourceRequest{Name: name}, &out); err != nil {
		s.sourcesPage(w, r, sourcesData{Err: "The source was not created: " + err.Error(), Name: name}, http.StatusOK)
		return
	}
	s.sourcesPage(w, r, sourcesData{
		Flash: fmt.Sprintf("Source %q created. Copy its write key now: it is not shown again.", out.Source.Name),
		Key:   s.writeKeyShown(r, out),
	}, http.StatusOK)
}

func (s *Server) setSourceEnabled(enabled bool) http.HandlerFunc {
	verb, done := "disable", "disabled: the tracking API refuses its events"
	if enabled {
		verb, done = "enable", "enabled"
	}
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PostFormValue("id")
		if id == "" {
			s.sourcesPage(w, r, sourcesData{Err: "No source was chosen."}, http.StatusOK)
			return
		}
		var src apitypes.Source
		if err := s.call(r, http.MethodPost, apitypes.Prefix+"/sources/"+url.PathEscape(id)+"/"+verb, nil, &src); err != nil {
			s.sourcesPage(w, r, sourcesData{Err: fmt.Sprintf("Could not %s the source: %s", verb, err)}, http.StatusOK)
			return
		}
		s.sourcesPage(w, r, sourcesData{Flash: fmt.Sprintf("Source %q %s.", src.Name, done)}, http.StatusOK)
	}
}

func (s *Server) rotateSourceKey(w http.ResponseWriter, r *http.Request) {
	id := r.PostFormValue("id")
	grace, ok := sourceGraces()[r.PostFormValue("grace")]
	if id == "" || !ok {
		s.sourcesPage(w, r, sourcesData{Err: "Choose a source and how long its previous keys keep working."}, http.StatusOK)
		return
	}
	var out apitypes.SourceWithKey
	err := s.call(r, http.MethodPost, apitypes.Prefix+"/sources/"+url.PathEscape(id)+"/rotate-key", apitypes.RotateKeyRequest{GraceSeconds: grace.seconds}, &out)
	if err != nil {
		s.sourcesPage(w, r, sourcesData{Err: "The key was not rotated: " + err.Error()}, http.StatusOK)
		return
	}
	when := "stopped working now"
	if grace.seconds > 0 {
		when = "keep working for " + grace.label
	}
	s.sourcesPage(w, r, sourcesData{
		Flash: fmt.Sprintf("Source %q has a new write key; the previous keys %s. Copy the new key now: it is not shown again.", out.Source.Name, when),
		Key:   s.writeKeyShown(r, out),
	}, http.StatusOK)
}

func (s *Server) writeKeyShown(r *http.Request, out apitypes.SourceWithKey) *shownKey {
	return &shownKey{Of: out.Source.Name, ID: out.Source.ID, Secret: out.WriteKey, Snippet: analyticsSnippet(trackingBase(r), out.WriteKey)}
}

// trackingBase is this deployment's URL as the browser reached it: the tracking API shares
// the console's host. Behind API Gateway X-Forwarded-Proto says https; a direct TLS connection
// too; anything else (the local runner) is http.
func trackingBase(r *http.Request) string {
	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	if p := strings.ToLower(strings.TrimSpace(strings.Split(r.Header.Get("X-Forwarded-Proto"), ",")[0])); p == "http" || p == "https" {
		proto = p
	}
	return proto + "://" + r.Host
}

// analyticsSnippet is the analytics.js (analytics-next) code that sends to this deployment:
// settings are loaded from its /v1/projects/{writeKey}/settings, events go to its /v1.
func analyticsSnippet(base, writeKey string) string {
	u, _ := url.Parse(base)
	return fmt.Sprintf(`// npm install @segment/analytics-next
import { AnalyticsBrowser } from "@segment/analytics-next";

export const analytics = AnalyticsBrowser.load(
  { writeKey: %q, cdnURL: %q },
  { integrations: { "Segment.io": { apiHost: %q, protocol: %q } } },
);
analytics.page();`, writeKey, base, u.Host+"/v1", u.Scheme)
}
