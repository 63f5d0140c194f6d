package console

import "net/http"

// registerDestinations: not built yet (a placeholder page).
func (s *Server) registerDestinations() {
	s.page("GET "+Prefix+"/destinations", func(w http.ResponseWriter, r *http.Request) {
		s.render(w, r, "stub", view{Title: "Destinations", Active: "destinations"})
	})
}
