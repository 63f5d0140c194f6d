package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// view is what the layout renders: the page's own data is Data.
type view struct {
	Title  string // the page title and heading
	Active string // the nav entry to mark current (navItem.Key)
	CSRF   string // the CSRF token (signed-in pages: the session's; sign-in: the form's)
	Flash  string // a success message
	Error  string // an error message (an API's answer)
	Data   any
	Nav    []navItem
}

// parseTemplates parses templates/layout.html with each other templates/<page>.html into one
// set per page: a page file defines "content" (and any fragments it renders alone).
func parseTemplates(fsys fs.FS) (map[string]*template.Template, error) {
	layout, err := template.New("layout.html").Funcs(funcs()).ParseFS(fsys, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("console: parse layout: %w", err)
	}
	files, err := fs.Glob(fsys, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, f := range files {
		name := strings.TrimSuffix(path.Base(f), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.Must(layout.Clone()).ParseFS(fsys, f)
		if err != nil {
			return nil, fmt.Errorf("console: parse %s: %w", f, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// render writes a whole page: the layout around the page's "content".
func (s *Server) render(w http.ResponseWriter, r *http.Request, page string, v view) {
	if v.CSRF == "" {
		v.CSRF = sessionOf(r).csrf
	}
	v.Nav = navItems()
	s.execute(w, r, page, "layout.html", v)
}

// fragment writes one named template of a page alone (an htmx swap target).
func (s *Server) fragment(w http.ResponseWriter, r *http.Request, page, name string, v view) {
	if v.CSRF == "" {
		v.CSRF = sessionOf(r).csrf
	}
	s.execute(w, r, page, name, v)
}

func (s *Server) execute(w http.ResponseWriter, r *http.Request, page, name string, v view) {
	t, ok := s.pages[page]
	if !ok {
		http.Error(w, "no such page", http.StatusInternalServerError)
		return
	}
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, name, v); err != nil {
		s.o.Logger.ErrorContext(r.Context(), "console: render", "page", page, "template", name, "err", err)
		http.Error(w, "could not render the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(b.Bytes())
}

// errorView is the view of a page that could not load its data: the API's message, never a
// stack or an identifier.
func errorView(title, active string, err error) view {
	return view{Title: title, Active: active, Error: err.Error()}
}

func funcs() template.FuncMap {
	return template.FuncMap{
		"prefix": func() string { return Prefix },
		"json": func(v any) string {
			b, err := json.MarshalIndent(v, "", "  ")
			if err != nil {
				return fmt.Sprintf("(not JSON: %v)", err)
			}
			return string(b)
		},
		"time": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return t.UTC().Format("2006-01-02 15:04:05Z")
		},
		"ago": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return time.Since(t).Round(time.Second).String() + " ago"
		},
		"join": strings.Join,
		"pct": func(part, whole int64) string {
			if whole == 0 {
				return "—"
			}
			return fmt.Sprintf("%.1f%%", 100*float64(part)/float64(whole))
		},
	}
}
