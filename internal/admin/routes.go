package admin

import (
	"log/slog"
)

// Services are the domain services behind the admin API, one per resource. Later resources
// (identity rules, computed traits, audiences, destinations, dead letters, deliveries) add a field
// here and one register line in New.
type Services struct {
	Sources SourceService
}

// New returns the admin router with every resource's routes registered. This is the one place
// routes are wired; api/openapi.yaml documents them and a test keeps the two in step.
func New(auth Authenticator, svc Services, logger *slog.Logger) *Router {
	r := NewRouter(auth, logger)
	registerSources(r, svc.Sources)
	return r
}
