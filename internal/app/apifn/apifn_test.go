package apifn_test

import (
	"os"
	"testing"

	"github.com/serverless-cdp/cdp/internal/admin/openapicheck"
	"github.com/serverless-cdp/cdp/internal/app"
	"github.com/serverless-cdp/cdp/internal/app/apifn"
	"github.com/serverless-cdp/cdp/internal/awsenv"
)

// TestAdminRoutesDocumented: the admin API as deployed (every registrar included) matches
// api/openapi.yaml route for route.
func TestAdminRoutesDocumented(t *testing.T) {
	spec, err := os.ReadFile("../../../api/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := apifn.NewAdminRouter(awsenv.Clients{}, app.Defaults(), nil) // nothing is called
	undocumented, unregistered, err := openapicheck.Compare(spec, r.Routes())
	if err != nil {
		t.Fatal(err)
	}
	if len(undocumented) > 0 || len(unregistered) > 0 {
		t.Fatalf("routes not in api/openapi.yaml: %v; documented but not served: %v", undocumented, unregistered)
	}
}
