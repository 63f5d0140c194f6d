package console

import "net/http"

// registerLive: not built yet (a placeholder page).
func (s *Server) registerLive() {
	s.page("GET "+Prefix+"/live", func(w http.ResponseWriter, r *http.Request) {
		s.render(w, r, "stub", view{Title: "Live events", Active: "live"})
	})
}
