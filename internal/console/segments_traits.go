package console

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/serverless-cdp/cdp/internal/segmentdef"
)

// The Computed traits page: list, form (kind, event filter, property, window, RFM thresholds)
// with the definition it generates checked as you type, create, edit, delete.

// traitSpec is the body of the computed-trait calls (ComputedTraitSpec).
type traitSpec struct {
	Name        string                 `json:"name"`
	Key         string                 `json:"key,omitempty"`
	Description string                 `json:"description,omitempty"`
	Kind        string                 `json:"kind"`
	Event       segmentdef.EventFilter `json:"event,omitzero"`
	Property    string                 `json:"property,omitempty"`
	Window      segmentdef.Window      `json:"window,omitzero"`
	Thresholds  []float64              `json:"thresholds,omitempty"`
	Prediction  *segmentdef.Prediction `json:"prediction,omitempty"`
}

// traitForm is the computed trait form's state.
type traitForm struct {
	ID, Name, Key, Description, Kind            string
	EvType, EvName, WhereKey, WhereOp, WhereVal string
	Property, Window, WindowUnit, Thresholds    string
	Pred                                        predictionForm
	Draft                                       *traitDraft
	Opts                                        *builderOpts
	Kinds                                       []option
}

// traitDraft is the form's generated definition and what is wrong with it, if anything.
type traitDraft struct {
	Definition string
	Error      string
}

// traitKinds are the kinds of computed traits, explained.
var traitKinds = []option{
	{segmentdef.KindCount, "event_count: how many matching events"},
	{segmentdef.KindSum, "sum of a numeric property"},
	{segmentdef.KindAvg, "avg: mean of a numeric property"},
	{segmentdef.KindMin, "min: smallest value of a property"},
	{segmentdef.KindMax, "max: largest value of a property"},
	{segmentdef.KindMostFrequent, "most_frequent: the property value seen most"},
	{segmentdef.KindFirst, "first: property of the earliest event (its time without one)"},
	{segmentdef.KindLast, "last: property of the latest event (its time without one)"},
	{segmentdef.KindUniqueList, "unique_list: distinct property values"},
	{segmentdef.KindUniqueCount, "unique_count: number of distinct property values"},
	{segmentdef.KindRFMRecency, "rfm_recency: 1–5, 5 = purchased recently"},
	{segmentdef.KindRFMFrequency, "rfm_frequency: 1–5, 5 = purchases most often"},
	{segmentdef.KindRFMMonetary, "rfm_monetary: 1–5, 5 = spends most"},
	{segmentdef.KindLifetimeValue, "lifetime_value: total revenue"},
}

// allTraitKinds are the form's kind choices: the aggregates, then the predictive kinds.
var allTraitKinds = append(append([]option(nil), traitKinds...), predictiveTraitKinds...)

func (s *Server) registerTraits() {
	list, table := s.listPages("traits", "Computed traits", s.listTraits)
	s.page("GET "+Prefix+"/traits", list)
	s.page("GET "+Prefix+"/traits/table", table)
	s.page("GET "+Prefix+"/traits/new", s.newTrait)
	s.page("GET "+Prefix+"/traits/{id}", s.editTrait)
	s.page("POST "+Prefix+"/traits/draft", s.traitDraft)
	s.page("POST "+Prefix+"/traits/save", s.saveTrait)
	s.page("GET "+Prefix+"/traits/{id}/quality", s.traitModel)
	s.page("POST "+Prefix+"/traits/{id}/train", s.trainTrait)
	s.page("GET "+Prefix+"/traits/{id}/delete", s.confirmDelete("trait"))
	s.page("POST "+Prefix+"/traits/{id}/delete", s.deleteDefinition("trait"))
}

func (s *Server) listTraits(r *http.Request) (segPage, error) {
	var out struct {
		ComputedTraits []traitView `json:"computedTraits"`
	}
	if err := s.call(r, http.MethodGet, traitsAPI, nil, &out); err != nil {
		return segPage{}, err
	}
	p := segPage{Mode: "list", Traits: out.ComputedTraits}
	for _, t := range out.ComputedTraits {
		p.Computing = p.Computing || t.Status != segmentdef.StatusLive
	}
	s.loadModels(r, &p)
	return p, nil
}

func (s *Server) newTrait(w http.ResponseWriter, r *http.Request) {
	f := &traitForm{Kind: segmentdef.KindCount, EvType: segmentdef.TypeTrack, WhereOp: "eq", WindowUnit: "days"}
	s.renderTraitForm(w, r, f, "")
}

func (s *Server) editTrait(w http.ResponseWriter, r *http.Request) {
	var t traitView
	if err := s.call(r, http.MethodGet, traitsAPI+"/"+url.PathEscape(r.PathValue("id")), nil, &t); err != nil {
		s.render(w, r, "traits", segError("Edit computed trait", "traits", err))
		return
	}
	f, err := traitFormOf(&t.ComputedTrait)
	if err != nil {
		s.render(w, r, "traits", segError("Edit computed trait", "traits", errors.New("The form cannot show this computed trait ("+
			err.Error()+"); change it with the admin API (PUT /admin/v1/computed-traits/{id}).")))
		return
	}
	s.renderTraitForm(w, r, f, "")
}

// traitFormOf is the form of a stored computed trait.
func traitFormOf(t *segmentdef.ComputedTrait) (*traitForm, error) {
	if len(t.Event.Where) > 1 {
		return nil, errors.New("several property filters")
	}
	f := &traitForm{ID: t.ID, Name: t.Name, Key: t.Key, Description: t.Description, Kind: t.Kind,
		EvType: t.Event.EventType(), EvName: t.Event.Name, WhereOp: "eq", Property: t.Property, WindowUnit: "days",
		Pred: predictionFormOf(t.Prediction)}
	if len(t.Event.Where) == 1 {
		w := t.Event.Where[0]
		f.WhereKey, f.WhereOp, f.WhereVal = w.Key, w.Op, valueText(w.Value)
	}
	switch {
	case t.Window.Hours != 0:
		f.Window, f.WindowUnit = strconv.Itoa(t.Window.Days*24+t.Window.Hours), "hours"
	case t.Window.Days != 0:
		f.Window = strconv.Itoa(t.Window.Days)
	}
	if t.Thresholds != nil {
		parts := make([]string, len(t.Thresholds))
		for i, x := range t.Thresholds {
			parts[i] = strconv.FormatFloat(x, 'f', -1, 64)
		}
		f.Thresholds = strings.Join(parts, ", ")
	}
	return f, nil
}

// traitFormFrom reads the submitted form.
func traitFormFrom(v url.Values) *traitForm {
	g := func(k string) string { return strings.TrimSpace(v.Get(k)) }
	return &traitForm{ID: g("id"), Name: g("name"), Key: g("key"), Description: g("description"), Kind: g("kind"),
		EvType: g("evtype"), EvName: g("evname"), WhereKey: g("wherekey"), WhereOp: g("whereop"), WhereVal: g("wherevalue"),
		Property: g("property"), Window: g("window"), WindowUnit: g("windowunit"), Thresholds: g("thresholds"),
		Pred: predictionFormFrom(v)}
}

// spec is the computed trait the form describes; an error is input the console can already
// tell is wrong (not a number).
func (f *traitForm) spec() (traitSpec, error) {
	t := traitSpec{Name: f.Name, Key: f.Key, Description: f.Description, Kind: f.Kind, Property: f.Property,
		Event: segmentdef.EventFilter{Type: f.EvType, Name: f.EvName}}
	if t.Event.Type == segmentdef.TypeTrack {
		t.Event.Type = ""
	}
	if f.WhereKey != "" {
		t.Event.Where = []segmentdef.Predicate{*predicate(f.WhereKey, f.WhereOp, f.WhereVal)}
	}
	if f.Window != "" {
		n, err := strconv.Atoi(f.Window)
		if err != nil || n < 0 {
			return t, fmt.Errorf("window: must be a whole number of %s, 0 or more (got %q)", f.WindowUnit, f.Window)
		}
		if f.WindowUnit == "hours" {
			t.Window.Hours = n
		} else {
			t.Window.Days = n
		}
	}
	pred, err := f.Pred.prediction(f.Kind)
	if err != nil {
		return t, err
	}
	t.Prediction = pred
	if f.Thresholds != "" {
		for _, p := range strings.Split(f.Thresholds, ",") {
			x, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
			if err != nil {
				return t, fmt.Errorf("thresholds: %q is not a number", strings.TrimSpace(p))
			}
			t.Thresholds = append(t.Thresholds, x)
		}
	}
	return t, nil
}

// draft is the form's definition, checked with the same validation the admin API applies
// (package segmentdef; it reads nothing): the defaults it fills in are shown too.
func (f *traitForm) draft() *traitDraft {
	t, err := f.spec()
	d := &traitDraft{Definition: indentJSON(t)}
	if err != nil {
		d.Error = err.Error()
		return d
	}
	ct := segmentdef.ComputedTrait{Name: t.Name, Key: t.Key, Kind: t.Kind, Event: t.Event, Property: t.Property,
		Window: t.Window, Thresholds: t.Thresholds}
	if t.Prediction != nil { // a copy: validation fills in defaults
		pred := *t.Prediction
		ct.Prediction = &pred
	}
	if err := ct.Validate(); err != nil {
		d.Error = err.Error()
		return d
	}
	t.Key, t.Event, t.Property, t.Thresholds, t.Prediction = ct.Key, ct.Event, ct.Property, ct.Thresholds, ct.Prediction
	d.Definition = indentJSON(t)
	return d
}

// traitDraft answers the form's live check.
func (s *Server) traitDraft(w http.ResponseWriter, r *http.Request) {
	f := traitFormFrom(formOf(r))
	s.fragment(w, r, "traits", "draft", view{Data: segPage{Trait: &traitForm{Draft: f.draft()}}})
}

// saveTrait creates (no id) or replaces the computed trait; on an error the form comes back
// as it was with the API's message, and nothing changed.
func (s *Server) saveTrait(w http.ResponseWriter, r *http.Request) {
	f := traitFormFrom(formOf(r))
	spec, err := f.spec()
	if err == nil {
		if f.ID == "" {
			err = s.call(r, http.MethodPost, traitsAPI, spec, nil)
		} else {
			err = s.call(r, http.MethodPut, traitsAPI+"/"+url.PathEscape(f.ID), spec, nil)
		}
	}
	if err != nil {
		s.renderTraitForm(w, r, f, "Not saved: "+err.Error())
		return
	}
	http.Redirect(w, r, Prefix+"/traits?done=saved", http.StatusSeeOther)
}

func (s *Server) renderTraitForm(w http.ResponseWriter, r *http.Request, f *traitForm, errMsg string) {
	title := "New computed trait"
	if f.ID != "" {
		title = "Edit computed trait"
	}
	f.Opts, f.Kinds, f.Draft = newBuilderOpts(), allTraitKinds, f.draft()
	s.render(w, r, "traits", view{Title: title, Active: "traits", Error: errMsg, Data: segPage{Mode: "form", Trait: f}})
}
