package console

import "net/http"

// registerOverview: not built yet (a placeholder page).
func (s *Server) registerOverview() {
	s.page("GET "+Prefix+"/{$}", func(w http.ResponseWriter, r *http.Request) {
		s.render(w, r, "stub", view{Title: "Overview", Active: "overview"})
	})
}
