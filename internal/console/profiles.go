package console

import "net/http"

// registerProfiles: not built yet (a placeholder page).
func (s *Server) registerProfiles() {
	s.page("GET "+Prefix+"/profiles", func(w http.ResponseWriter, r *http.Request) {
		s.render(w, r, "stub", view{Title: "Profiles", Active: "profiles"})
	})
}
