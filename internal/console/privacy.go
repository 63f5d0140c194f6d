package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"

	"github.com/serverless-cdp/cdp/internal/apitypes"
)

// The Privacy page: the privacy request log (newest first, masked identifiers, counts per
// store), one request with its results and export, the suppression list, and a form to create
// a request. Everything goes through the admin API's /admin/v1/privacy routes; request ids go
// in query strings like the rest.

const privacyPageSize = 25

// requestTypes are the form's choices, with what each does.
var privRequestTypes = []struct{ Value, Label string }{
	{"export", "export: store everything about the person as one document (kept 7 days)"},
	{"suppress", "suppress: drop every new event that carries one of the person's identifiers"},
	{"unsuppress", "unsuppress: lift a suppression"},
	{"delete", "delete: erase the person from every store"},
	{"suppress_with_delete", "suppress_with_delete: suppress, then erase"},
}

var privIDRE = regexp.MustCompile(`^pr_[0-9a-z]{21}$`)

func (s *Server) registerPrivacy() {
	s.page("GET "+Prefix+"/privacy", s.privacyPage)
	s.page("POST "+Prefix+"/privacy/requests", s.privacyCreate)
	s.page("GET "+Prefix+"/privacy/request", s.privacyRequestPage)
	s.page("GET "+Prefix+"/privacy/status", s.privacyStatus)
	s.page("GET "+Prefix+"/privacy/export", s.privacyExport)
}

// privacyForm is the create form's input (kept to show it again after an error).
type privacyForm struct {
	Type, Identifiers, Reason string
}

// privacyView is what templates/privacy.html renders: the log page, one request, or (both
// nil) only the error of the view.
type privacyView struct {
	Page    *privacyPageData
	Request *privRequest
}

// privacyPageData is the Privacy page's data.
type privacyPageData struct {
	Types        []struct{ Value, Label string }
	Form         privacyForm
	Requests     []privRequest
	Next         string
	Paged        bool // not the first page
	Suppressions []apitypes.PrivacySuppression
	Dropped      []privCount
}

type privCount struct {
	Key   string
	Count int64
}

// privRequest is a privacy request as the pages show it.
type privRequest struct {
	apitypes.PrivacyRequest
	Done        bool
	Class       string // the status badge's class
	Stores      []privStore
	Total       int
	ExportReady bool
}

// privStore is what a request erased or exported in one store.
type privStore struct {
	Holder string
	Kinds  string // "kind n, kind n"
	Total  int
}

func newPrivRequest(r apitypes.PrivacyRequest) privRequest {
	v := privRequest{PrivacyRequest: r, Done: r.Status == "completed" || r.Status == "failed"}
	switch r.Status {
	case "completed":
		v.Class = "ok"
	case "failed":
		v.Class = "bad"
	default:
		v.Class = "warn"
	}
	for _, holder := range privSortedKeys(r.Results) {
		res := privStore{Holder: holder}
		var kinds []string
		for _, kind := range privSortedKeys(r.Results[holder]) {
			n := r.Results[holder][kind]
			kinds = append(kinds, fmt.Sprintf("%s %d", kind, n))
			res.Total += n
		}
		res.Kinds = strings.Join(kinds, ", ")
		v.Total += res.Total
		v.Stores = append(v.Stores, res)
	}
	// The create answer and the log carry no export document: a completed export links the
	// download, which says so if the document expired.
	v.ExportReady = r.Type == "export" && r.Status == "completed" && !r.ExportExpired
	return v
}

func privSortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// privacyPage shows the log (a page of it: ?next=), the suppressions and the create form.
func (s *Server) privacyPage(w http.ResponseWriter, r *http.Request) {
	s.showPrivacy(w, r, http.StatusOK, privacyForm{Type: "export"}, "")
}

// showPrivacy renders the Privacy page with the form as given and an error (if any).
func (s *Server) showPrivacy(w http.ResponseWriter, r *http.Request, status int, form privacyForm, msg string) {
	v := view{Title: "Privacy", Active: "privacy", Error: msg}
	data := privacyPageData{Types: privRequestTypes, Form: form}
	next := r.URL.Query().Get("next")
	q := url.Values{"limit": {fmt.Sprint(privacyPageSize)}}
	if next != "" {
		q.Set("next", next)
		data.Paged = true
	}
	var list apitypes.PrivacyRequestList
	var sup apitypes.PrivacySuppressions
	err := s.call(r, http.MethodGet, "/admin/v1/privacy/requests?"+q.Encode(), nil, &list)
	if err == nil {
		err = s.call(r, http.MethodGet, "/admin/v1/privacy/suppressions", nil, &sup)
	}
	if err != nil {
		v.Error = strings.TrimSpace(msg + " " + err.Error())
	}
	for _, q := range list.Requests {
		data.Requests = append(data.Requests, newPrivRequest(q))
	}
	data.Next = list.Next
	data.Suppressions = sup.Suppressions
	for _, src := range privSortedKeys(sup.DroppedBySource) {
		data.Dropped = append(data.Dropped, privCount{src, sup.DroppedBySource[src]})
	}
	v.Data = privacyView{Page: &data}
	if status != http.StatusOK {
		privHTMLStatus(w, status)
	}
	s.render(w, r, "privacy", v)
}

// privacyCreate creates a request from the form: identifiers one per line (or separated by
// commas). delete and suppress_with_delete need DELETE typed in the confirmation field. The
// API's validation message is shown as it is; a rejected request changes nothing.
func (s *Server) privacyCreate(w http.ResponseWriter, r *http.Request) {
	form := privacyForm{Type: r.PostFormValue("type"), Identifiers: r.PostFormValue("identifiers"), Reason: strings.TrimSpace(r.PostFormValue("reason"))}
	ids := privSplitIdentifiers(form.Identifiers)
	var err error
	if (form.Type == "delete" || form.Type == "suppress_with_delete") && strings.TrimSpace(r.PostFormValue("confirm")) != "DELETE" {
		err = fmt.Errorf("nothing was requested: a %s erases the person from every store; type DELETE in the confirmation field", form.Type)
	}
	var req *apitypes.PrivacyRequest
	if err == nil {
		req, err = s.submitPrivacy(r, form.Type, ids, form.Reason)
	}
	if !privIsHTMX(r) && err != nil {
		s.showPrivacy(w, r, http.StatusBadRequest, form, err.Error())
		return
	}
	s.privacyAnswer(w, r, req, err)
}

// privSplitIdentifiers reads identifiers one per line or separated by commas.
func privSplitIdentifiers(text string) []string {
	var out []string
	for _, line := range strings.FieldsFunc(text, func(r rune) bool { return r == '\n' || r == '\r' || r == ',' }) {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return out
}

// submitPrivacy creates a privacy request (the API runs it inline for a while and answers it
// as it stands).
func (s *Server) submitPrivacy(r *http.Request, typ string, ids []string, reason string) (*apitypes.PrivacyRequest, error) {
	var out apitypes.PrivacyRequest
	in := apitypes.PrivacyRequestInput{Type: typ, Identifiers: ids, Reason: reason}
	if err := s.call(r, http.MethodPost, "/admin/v1/privacy/requests", in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// privacyAnswer answers a form that created (or failed to create) a request: htmx gets the
// request's status fragment (which polls until the request is done) or the error; a plain
// form is sent to the request's page.
func (s *Server) privacyAnswer(w http.ResponseWriter, r *http.Request, req *apitypes.PrivacyRequest, err error) {
	if !privIsHTMX(r) {
		if err != nil {
			privHTMLStatus(w, http.StatusBadRequest)
			s.render(w, r, "privacy", view{Title: "Privacy request not created", Active: "privacy", Error: err.Error(), Data: privacyView{}})
			return
		}
		http.Redirect(w, r, Prefix+"/privacy/request?id="+url.QueryEscape(req.ID), http.StatusSeeOther)
		return
	}
	if err != nil {
		// 200, so htmx swaps the message in (it ignores error answers by default).
		s.fragment(w, r, "privacy", "reqerror", view{Error: err.Error()})
		return
	}
	s.fragment(w, r, "privacy", "reqstatus", view{Data: newPrivRequest(*req)})
}

func privIsHTMX(r *http.Request) bool { return r.Header.Get("HX-Request") == "true" }

// getRequest reads one request (with its export document when it has one).
func (s *Server) getRequest(r *http.Request) (apitypes.PrivacyRequest, error) {
	var out apitypes.PrivacyRequest
	id := r.URL.Query().Get("id")
	if !privIDRE.MatchString(id) {
		return out, &APIError{Status: http.StatusNotFound, Message: "no such privacy request"}
	}
	err := s.call(r, http.MethodGet, "/admin/v1/privacy/requests/"+id, nil, &out)
	return out, err
}

// privacyRequestPage shows one request (it polls its status while it runs).
func (s *Server) privacyRequestPage(w http.ResponseWriter, r *http.Request) {
	req, err := s.getRequest(r)
	if err != nil {
		if IsNotFound(err) {
			privHTMLStatus(w, http.StatusNotFound)
		}
		v := errorView("Privacy request", "privacy", err)
		v.Data = privacyView{}
		s.render(w, r, "privacy", v)
		return
	}
	rv := newPrivRequest(req)
	s.render(w, r, "privacy", view{Title: "Privacy request " + req.ID, Active: "privacy", Data: privacyView{Request: &rv}})
}

// privacyStatus is the status fragment a running request polls.
func (s *Server) privacyStatus(w http.ResponseWriter, r *http.Request) {
	req, err := s.getRequest(r)
	if err != nil {
		s.fragment(w, r, "privacy", "reqerror", view{Error: err.Error()})
		return
	}
	s.fragment(w, r, "privacy", "reqstatus", view{Data: newPrivRequest(req)})
}

// privacyExport downloads a completed export's document (JSON, as the API stores it).
func (s *Server) privacyExport(w http.ResponseWriter, r *http.Request) {
	req, err := s.getRequest(r)
	if err == nil && len(req.Export) == 0 {
		msg := fmt.Sprintf("request %s has no export document (type %s, status %s)", req.ID, req.Type, req.Status)
		if req.ExportExpired {
			msg = "the export of request " + req.ID + " expired (exports are kept 7 days) or was erased by a later delete"
		}
		err = &APIError{Status: http.StatusConflict, Message: msg}
	}
	var aerr *APIError
	if err != nil {
		status := http.StatusInternalServerError
		if errors.As(err, &aerr) {
			status = aerr.Status
		}
		privHTMLStatus(w, status)
		v := errorView("Export", "privacy", err)
		v.Data = privacyView{}
		s.render(w, r, "privacy", v)
		return
	}
	var doc json.RawMessage = req.Export
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", `attachment; filename="export-`+req.ID+`.json"`)
	_, _ = w.Write(doc)
}

// privHTMLStatus writes the status of an HTML answer that is not a 200 (render writes the body).
func privHTMLStatus(w http.ResponseWriter, status int) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
}
