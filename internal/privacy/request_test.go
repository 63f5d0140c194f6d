package privacy

import (
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	many := make([]string, MaxIdentifiers+1)
	for i := range many {
		many[i] = "user_id:u" + strings.Repeat("x", i)
	}
	for _, c := range []struct {
		in    Input
		field string
	}{
		{Input{Type: "erase", Identifiers: []string{"user_id:u1"}}, "type"},
		{Input{Type: TypeDelete}, "identifiers"},
		{Input{Type: TypeDelete, Identifiers: many}, "identifiers"},
		{Input{Type: TypeDelete, Identifiers: []string{"ann@example.com"}}, "identifiers[0]"},
		{Input{Type: TypeDelete, Identifiers: []string{"user_id:u1", ":x"}}, "identifiers[1]"},
		{Input{Type: TypeDelete, Identifiers: []string{"Email:a@b.c"}}, "identifiers[0]"},
		{Input{Type: TypeDelete, Identifiers: []string{strings.Repeat("t", 65) + ":x"}}, "identifiers[0]"},
		{Input{Type: TypeDelete, Identifiers: []string{"user_id:"}}, "identifiers[0]"},
		{Input{Type: TypeDelete, Identifiers: []string{"user_id:  "}}, "identifiers[0]"},
		{Input{Type: TypeDelete, Identifiers: []string{"user_id:" + strings.Repeat("v", 513)}}, "identifiers[0]"},
		{Input{Type: TypeDelete, Identifiers: []string{"user_id:\xff"}}, "identifiers[0]"},
		{Input{Type: TypeDelete, Identifiers: []string{"user_id:u1", " user_id:u1 "}}, "identifiers[1]"},
		{Input{Type: TypeDelete, Identifiers: []string{"user_id:u1"}, Reason: strings.Repeat("r", 1025)}, "reason"},
	} {
		_, err := NewRequest(c.in, testHasher, time.Now())
		v, ok := err.(*ValidationError)
		if !ok || v.Field != c.field || !IsValidation(err) {
			t.Errorf("%+v: %v, want an error on %s", c.in, err, c.field)
		}
	}
	r, err := NewRequest(Input{Type: TypeExport, Identifiers: []string{" email:Ann@Example.com", "user_id:" + strings.Repeat("v", 512)}, Reason: strings.Repeat("r", 1024)}, testHasher, time.Now())
	if err != nil || r.Identifiers[0] != "email:Ann@Example.com" || r.Hashes[0] != testHasher.Identifier("email:ann@example.com") ||
		len(r.Labels) != 2 || r.Status != StatusPending || r.Step != StepResolve || len(r.ID) != 24 || !strings.HasPrefix(r.ID, "pr_") {
		t.Fatalf("valid input: %+v %v", r, err)
	}
	if a, b := NewID(time.Unix(1, 0)), NewID(time.Unix(2, 0)); a >= b {
		t.Fatalf("ids do not sort by time: %s %s", a, b)
	}
}
