package console

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/serverless-cdp/cdp/internal/segmentdef"
)

// The Audiences page (/console/audiences) and the Computed traits page (/console/traits):
// lists with live size and backfill status, a builder for audience conditions with a live
// preview (the admin API's POST /admin/v1/audiences/preview), a form for computed traits, and
// create, edit and delete, all through the admin API.

const (
	audiencesAPI = "/admin/v1/audiences"
	traitsAPI    = "/admin/v1/computed-traits"
	// previewLimit bounds the profiles one live preview looks at (each costs reads).
	previewLimit = 1000
)

// backfillJob is a definition's backfill, as the admin API shows it.
type backfillJob struct {
	Status     string    `json:"status"`
	Processed  int       `json:"processed"`
	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt"`
}

// audienceView is the admin API's AudienceView.
type audienceView struct {
	segmentdef.Audience
	Status   string       `json:"status"`
	Size     int          `json:"size"`
	Backfill *backfillJob `json:"backfill"`
}

// traitView is the admin API's ComputedTraitView.
type traitView struct {
	segmentdef.ComputedTrait
	Status   string       `json:"status"`
	Backfill *backfillJob `json:"backfill"`
	Model    *modelView   `json:"-"` // predictive kinds: the model (read from …/quality)
}

// audienceSpec is the body of the audience calls (AudienceSpec): only what a person sets.
type audienceSpec struct {
	Name        string               `json:"name"`
	Key         string               `json:"key,omitempty"`
	Description string               `json:"description,omitempty"`
	Condition   segmentdef.Condition `json:"condition"`
}

// previewResult is the admin API's PreviewResult.
type previewResult struct {
	Matched  int      `json:"matched"`
	Scanned  int      `json:"scanned"`
	Complete bool     `json:"complete"`
	Sample   []string `json:"sample"`
}

// segPage is the data of both pages; Mode picks what "content" shows: list, form or delete.
type segPage struct {
	Mode      string
	Audiences []audienceView
	Traits    []traitView
	Computing bool // some backfill or training run is under way: the list refreshes itself
	Audience  *audienceForm
	Trait     *traitForm
	Delete    *deleteConfirm
	Model     *modelPage // Mode "model": a predictive trait's model page
}

// deleteConfirm asks before a delete.
type deleteConfirm struct{ ID, Name, Kind, Action, Back string }

// audienceForm is the builder's state: the audience's fields and its condition tree.
type audienceForm struct {
	ID, Name, Key, Description string
	Tree                       *condNode
	Preview                    *previewView
}

// previewView is the preview region: the size and sample, or why there is none, and the
// definition the builder generated.
type previewView struct {
	Result     *previewResult
	Error      string
	Definition string
	Limit      int
	Profiles   string // where a sample profile id links to
}

func (s *Server) registerSegments() {
	list, table := s.listPages("audiences", "Audiences", s.listAudiences)
	s.page("GET "+Prefix+"/audiences", list)
	s.page("GET "+Prefix+"/audiences/table", table)
	s.page("GET "+Prefix+"/audiences/new", s.newAudience)
	s.page("GET "+Prefix+"/audiences/{id}", s.editAudience)
	s.page("POST "+Prefix+"/audiences/builder", s.audienceBuilder)
	s.page("POST "+Prefix+"/audiences/preview", s.audiencePreview)
	s.page("POST "+Prefix+"/audiences/save", s.saveAudience)
	s.page("GET "+Prefix+"/audiences/{id}/delete", s.confirmDelete("audience"))
	s.page("POST "+Prefix+"/audiences/{id}/delete", s.deleteDefinition("audience"))
	s.registerTraits()
}

// doneMessage is the flash a redirect after a change may ask for (?done=).
func doneMessage(done string) string {
	switch done {
	case "saved":
		return "Saved. The backfill over existing profiles has started; the status shows when it is done."
	case "deleted":
		return "Deleted."
	}
	return ""
}

// listPages serves a definition list (audiences or computed traits) with its size and backfill
// status, and the list's table alone, which refreshes itself while a backfill runs.
func (s *Server) listPages(page, title string, list func(*http.Request) (segPage, error)) (full, table http.HandlerFunc) {
	full = func(w http.ResponseWriter, r *http.Request) {
		p, err := list(r)
		if err != nil {
			s.render(w, r, page, segError(title, page, err))
			return
		}
		s.render(w, r, page, view{Title: title, Active: page, Flash: doneMessage(r.URL.Query().Get("done")), Data: p})
	}
	table = func(w http.ResponseWriter, r *http.Request) {
		p, err := list(r)
		v := view{Data: p}
		if err != nil {
			v.Error = err.Error()
		}
		s.fragment(w, r, page, "table", v)
	}
	return full, table
}

func (s *Server) listAudiences(r *http.Request) (segPage, error) {
	var out struct {
		Audiences []audienceView `json:"audiences"`
	}
	if err := s.call(r, http.MethodGet, audiencesAPI, nil, &out); err != nil {
		return segPage{}, err
	}
	p := segPage{Mode: "list", Audiences: out.Audiences}
	for _, a := range out.Audiences {
		p.Computing = p.Computing || a.Status != segmentdef.StatusLive
	}
	return p, nil
}

func (s *Server) newAudience(w http.ResponseWriter, r *http.Request) {
	f := &audienceForm{Tree: defaultTree()}
	s.renderAudienceForm(w, r, f, "")
}

func (s *Server) editAudience(w http.ResponseWriter, r *http.Request) {
	var a audienceView
	if err := s.call(r, http.MethodGet, audiencesAPI+"/"+url.PathEscape(r.PathValue("id")), nil, &a); err != nil {
		s.render(w, r, "audiences", segError("Edit audience", "audiences", err))
		return
	}
	tree, err := treeOf(&a.Condition)
	if err != nil {
		v := segError("Edit audience", "audiences", errors.New("The builder cannot show this audience's condition ("+
			err.Error()+"); change it with the admin API (PUT /admin/v1/audiences/{id})."))
		v.Data = segPage{Mode: "json", Audience: &audienceForm{ID: a.ID, Name: a.Name,
			Preview: &previewView{Definition: indentJSON(audienceSpec{Name: a.Name, Key: a.Key, Description: a.Description, Condition: a.Condition})}}}
		s.render(w, r, "audiences", v)
		return
	}
	f := &audienceForm{ID: a.ID, Name: a.Name, Key: a.Key, Description: a.Description, Tree: tree}
	s.renderAudienceForm(w, r, f, "")
}

// audienceFormOf reads the builder's form.
func audienceFormOf(f url.Values) *audienceForm {
	return &audienceForm{ID: strings.TrimSpace(f.Get("id")), Name: strings.TrimSpace(f.Get("name")),
		Key: strings.TrimSpace(f.Get("key")), Description: strings.TrimSpace(f.Get("description")), Tree: parseTree(f)}
}

// spec is the audience the form describes, and which builder node each condition path is.
// An error is the console's own complaint about a node (set on it).
func (f *audienceForm) spec() (audienceSpec, map[string]*condNode, error) {
	paths := map[string]*condNode{}
	f.Tree.number("c", "", 0, f.Tree.Opts)
	c, err := f.Tree.condition("condition", paths)
	var ne *nodeError
	if errors.As(err, &ne) {
		ne.node.Error = ne.msg
	}
	return audienceSpec{Name: f.Name, Key: f.Key, Description: f.Description, Condition: c}, paths, err
}

// preview asks the admin API how many profiles the form's audience matches now.
func (s *Server) preview(r *http.Request, f *audienceForm) *previewView {
	pv := &previewView{Limit: previewLimit, Profiles: Prefix + "/profiles?id="}
	spec, paths, err := f.spec()
	pv.Definition = indentJSON(spec)
	if err != nil {
		pv.Error = err.Error()
		return pv
	}
	if spec.Name == "" {
		spec.Name = "preview"
	}
	// A draft of a saved audience names it: the API checks it in that audience's place (its
	// key is its own, references to it are no cycle).
	draft := struct {
		ID string `json:"id,omitempty"`
		audienceSpec
	}{f.ID, spec}
	var res previewResult
	if err := s.call(r, http.MethodPost, audiencesAPI+"/preview?limit="+strconv.Itoa(previewLimit), draft, &res); err != nil {
		pv.Error = apiMessage(err, paths)
		return pv
	}
	pv.Result = &res
	return pv
}

// apiMessage is an API error for people: a validation error names the builder node it is about.
func apiMessage(err error, paths map[string]*condNode) string {
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == http.StatusBadRequest {
		return placeError(ae.Message, paths)
	}
	return err.Error()
}

// audiencePreview answers the builder's live preview (the form changed): the preview region,
// and each condition's error slot (out of band), so an error shows at its condition.
func (s *Server) audiencePreview(w http.ResponseWriter, r *http.Request) {
	f := audienceFormOf(formOf(r))
	f.Preview = s.preview(r, f)
	s.fragment(w, r, "audiences", "preview", view{Data: segPage{Audience: f}})
}

// audienceBuilder changes the tree (add or remove a condition) and answers the builder, with
// the preview of the new tree (an out-of-band swap). Without script the buttons submit the
// form to saveAudience, which does the same and answers the whole page.
func (s *Server) audienceBuilder(w http.ResponseWriter, r *http.Request) {
	form := formOf(r)
	f := audienceFormOf(form)
	f.Tree.number("c", "", 0, nil)
	f.Tree.apply(form.Get("action"), form)
	f.Preview = s.preview(r, f)
	if err := s.builderOptions(r, f); err != nil {
		f.Preview.Error = err.Error()
	}
	s.fragment(w, r, "audiences", "builder-update", view{Data: segPage{Mode: "form", Audience: f}})
}

// saveAudience creates (no id) or replaces the audience; on an error the form comes back as
// it was, with the API's message at the node it is about, and nothing changed.
func (s *Server) saveAudience(w http.ResponseWriter, r *http.Request) {
	form := formOf(r)
	f := audienceFormOf(form)
	if a := form.Get("action"); a != "" { // a builder button, without script
		f.Tree.number("c", "", 0, nil)
		f.Tree.apply(a, form)
		s.renderAudienceForm(w, r, f, "")
		return
	}
	spec, paths, err := f.spec()
	if err == nil {
		if f.ID == "" {
			err = s.call(r, http.MethodPost, audiencesAPI, spec, nil)
		} else {
			err = s.call(r, http.MethodPut, audiencesAPI+"/"+url.PathEscape(f.ID), spec, nil)
		}
	}
	if err != nil {
		msg := err.Error()
		var ne *nodeError
		if !errors.As(err, &ne) {
			msg = apiMessage(err, paths)
		}
		s.renderAudienceForm(w, r, f, "Not saved: "+msg)
		return
	}
	http.Redirect(w, r, Prefix+"/audiences?done=saved", http.StatusSeeOther)
}

// renderAudienceForm shows the builder page; the preview loads itself.
func (s *Server) renderAudienceForm(w http.ResponseWriter, r *http.Request, f *audienceForm, errMsg string) {
	title := "New audience"
	if f.ID != "" {
		title = "Edit audience"
	}
	v := view{Title: title, Active: "audiences", Error: errMsg, Data: segPage{Mode: "form", Audience: f}}
	if err := s.builderOptions(r, f); err != nil && v.Error == "" {
		v.Error = err.Error()
	}
	s.render(w, r, "audiences", v)
}

// builderOptions numbers the tree and fills the selects: computed traits and other audiences
// are read from the admin API only when the tree has a condition on them.
func (s *Server) builderOptions(r *http.Request, f *audienceForm) error {
	opts := newBuilderOpts()
	f.Tree.number("c", "", 0, opts)
	need := map[string]bool{}
	f.Tree.walk(func(n *condNode) { need[n.Kind] = true })
	if need[nodeComputed] {
		var out struct {
			ComputedTraits []traitView `json:"computedTraits"`
		}
		if err := s.call(r, http.MethodGet, traitsAPI, nil, &out); err != nil {
			return err
		}
		for _, t := range out.ComputedTraits {
			opts.Traits = append(opts.Traits, option{t.Key, t.Name + " (" + t.Key + ")"})
		}
	}
	if need[nodeAudience] {
		var out struct {
			Audiences []audienceView `json:"audiences"`
		}
		if err := s.call(r, http.MethodGet, audiencesAPI, nil, &out); err != nil {
			return err
		}
		for _, a := range out.Audiences {
			if a.ID != f.ID {
				opts.Audiences = append(opts.Audiences, option{a.ID, a.Name + " (" + a.Key + ")"})
			}
		}
	}
	return nil
}

// walk calls fn on every node.
func (n *condNode) walk(fn func(*condNode)) {
	fn(n)
	for _, c := range n.Children {
		c.walk(fn)
	}
}

// confirmDelete asks before deleting an audience or a computed trait.
func (s *Server) confirmDelete(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		page, api, title := deleteTarget(kind)
		id := r.PathValue("id")
		var def struct{ Name string }
		if err := s.call(r, http.MethodGet, api+"/"+url.PathEscape(id), nil, &def); err != nil {
			s.render(w, r, page, segError(title, page, err))
			return
		}
		d := &deleteConfirm{ID: id, Name: def.Name, Kind: kind, Action: Prefix + "/" + page + "/" + url.PathEscape(id) + "/delete", Back: Prefix + "/" + page}
		s.render(w, r, page, view{Title: title, Active: page, Data: segPage{Mode: "delete", Delete: d}})
	}
}

// deleteDefinition deletes after the confirmation; a refusal (still in use) is shown there.
func (s *Server) deleteDefinition(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		page, api, title := deleteTarget(kind)
		id := r.PathValue("id")
		if err := s.call(r, http.MethodDelete, api+"/"+url.PathEscape(id), nil, nil); err != nil {
			d := &deleteConfirm{ID: id, Name: strings.TrimSpace(r.PostFormValue("name")), Kind: kind,
				Action: Prefix + "/" + page + "/" + url.PathEscape(id) + "/delete", Back: Prefix + "/" + page}
			s.render(w, r, page, view{Title: title, Active: page, Error: "Not deleted: " + err.Error(), Data: segPage{Mode: "delete", Delete: d}})
			return
		}
		http.Redirect(w, r, Prefix+"/"+page+"?done=deleted", http.StatusSeeOther)
	}
}

// segError is a page of these two that could not load its data.
func segError(title, active string, err error) view {
	v := errorView(title, active, err)
	v.Data = segPage{}
	return v
}

func deleteTarget(kind string) (page, api, title string) {
	if kind == "audience" {
		return "audiences", audiencesAPI, "Delete audience"
	}
	return "traits", traitsAPI, "Delete computed trait"
}

// formOf parses a submitted form (bad bodies read as empty).
func formOf(r *http.Request) url.Values {
	_ = r.ParseForm()
	return r.PostForm
}

func indentJSON(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err.Error()
	}
	return string(b)
}
