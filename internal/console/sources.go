package console

import "net/http"

// registerSources: not built yet (a placeholder page).
func (s *Server) registerSources() {
	s.page("GET "+Prefix+"/sources", func(w http.ResponseWriter, r *http.Request) {
		s.render(w, r, "stub", view{Title: "Sources", Active: "sources"})
	})
}
