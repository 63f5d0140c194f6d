package admin

import (
	"log/slog"
)

// Registrar adds a resource's routes to the router. Each resource is an adapter package next to
// this one (admin/sources, admin/identityrules, admin/deadletters, admin/segments,
// admin/destinations) with a Register function; it imports this package, never the reverse.
type Registrar func(*Router)

// New returns the admin router with the routes of each registrar, in order. The composition
// root (internal/app/apifn) is the one place the full set is assembled; api/openapi.yaml
// documents it, and a test (package openapicheck) checks the two agree.
func New(auth Authenticator, logger *slog.Logger, registrars ...Registrar) *Router {
	r := NewRouter(auth, logger)
	for _, reg := range registrars {
		reg(r)
	}
	return r
}
