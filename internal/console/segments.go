package console

import "net/http"

// registerSegments: not built yet (a placeholder page).
func (s *Server) registerSegments() {
	s.page("GET "+Prefix+"/audiences", func(w http.ResponseWriter, r *http.Request) {
		s.render(w, r, "stub", view{Title: "Audiences", Active: "audiences"})
	})
	s.page("GET "+Prefix+"/traits", func(w http.ResponseWriter, r *http.Request) {
		s.render(w, r, "stub", view{Title: "Computed traits", Active: "traits"})
	})
}
