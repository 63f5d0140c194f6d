package idrules_test

import (
	"errors"
	"testing"

	"github.com/serverless-cdp/cdp/internal/idrules"
)

// TestValidate: a bad rule set names the offending field; a good one compiles with the defaults
// filled in.
func TestValidate(t *testing.T) {
	for _, c := range []struct {
		rules idrules.Rules
		field string
	}{
		{idrules.Rules{Types: []idrules.TypeRule{{Type: "Email"}}}, "types[0].type"},
		{idrules.Rules{Types: []idrules.TypeRule{{Type: "email"}, {Type: "email"}}}, "types[1].type"},
		{idrules.Rules{Types: []idrules.TypeRule{{Type: "phone", Limit: 101}}}, "types[0].limit"},
		{idrules.Rules{Types: []idrules.TypeRule{{Type: "phone", Priority: -1}}}, "types[0].priority"},
		{idrules.Rules{Types: []idrules.TypeRule{{Type: "phone", Priority: 1}}}, "types"},
		{idrules.Rules{Types: []idrules.TypeRule{{Type: "phone", Blocked: []idrules.BlockedValue{{Match: "regex", Value: "(x"}}}}}, "types[0].blocked[0].value"},
		{idrules.Rules{Types: []idrules.TypeRule{{Type: "phone", Blocked: []idrules.BlockedValue{{Match: "glob", Value: "x"}}}}}, "types[0].blocked[0].match"},
	} {
		var ve *idrules.ValidationError
		if err := idrules.Validate(c.rules); !errors.As(err, &ve) || ve.Field != c.field {
			t.Errorf("%+v: %v, want a ValidationError on %s", c.rules, err, c.field)
		}
	}
	c, err := idrules.Compile(idrules.Rules{Types: []idrules.TypeRule{{Type: "phone", Priority: 3, Limit: 2,
		Blocked: []idrules.BlockedValue{{Match: "exact", Value: "555"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Limit("phone") != 2 || c.Limit("email") != 5 || c.Limit("user_id") != 1 || c.Limit("other") != idrules.DefaultLimit {
		t.Fatalf("limits: %d %d %d", c.Limit("phone"), c.Limit("email"), c.Limit("user_id"))
	}
	if c.Blocked("phone", "555") == "" || c.Blocked("email", "555") != "" || c.Blocked("email", "null") == "" {
		t.Fatal("blocked values")
	}
	if got := c.Types(); len(got) != 3 || got[0] != "user_id" || got[1] != "email" || got[2] != "phone" {
		t.Fatalf("types by priority: %v", got)
	}
}
