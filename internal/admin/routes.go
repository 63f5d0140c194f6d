package admin

import (
	"log/slog"
)

// Services are the domain services behind the admin API's own resources. Sources are always
// mounted; identity rules and dead letters only when their service is set.
type Services struct {
	Sources       SourceService
	IdentityRules IdentityRulesService
	DeadLetters   DeadLetterService // the pipeline stages' dead letters
}

// Registrar adds a resource's routes to the router. Packages that cannot be imported here (they
// import admin themselves, e.g. activation.RegisterAdmin) plug in through New's registrars.
type Registrar func(*Router)

// New returns the admin router with every resource's routes registered: this package's own
// (sources, identity rules, pipeline dead letters) and then those of each registrar, in order. The composition root (functions/api)
// is the one place the full set is assembled; api/openapi.yaml documents it, and a test
// (package openapicheck) checks the two agree.
func New(auth Authenticator, svc Services, logger *slog.Logger, registrars ...Registrar) *Router {
	r := NewRouter(auth, logger)
	registerSources(r, svc.Sources)
	if svc.IdentityRules != nil {
		registerIdentityRules(r, svc.IdentityRules)
	}
	if svc.DeadLetters != nil {
		registerDeadLetters(r, svc.DeadLetters)
	}
	for _, reg := range registrars {
		reg(r)
	}
	return r
}
