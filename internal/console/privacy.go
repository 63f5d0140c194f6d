package console

import "net/http"

// registerPrivacy: not built yet (a placeholder page).
func (s *Server) registerPrivacy() {
	s.page("GET "+Prefix+"/privacy", func(w http.ResponseWriter, r *http.Request) {
		s.render(w, r, "stub", view{Title: "Privacy", Active: "privacy"})
	})
}
