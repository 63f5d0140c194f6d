package identity

import "github.com/serverless-cdp/cdp/internal/idrules"

// The rule set's wire form, defaults and validation are package idrules (shared with the cdp
// CLI, which validates config files locally); these names keep identity's API.
type (
	Rules           = idrules.Rules
	TypeRule        = idrules.TypeRule
	BlockedValue    = idrules.BlockedValue
	ValidationError = idrules.ValidationError
)

// Limits of the rule values.
const (
	DefaultLimit = idrules.DefaultLimit
	MaxLimit     = idrules.MaxLimit
	MaxBlocked   = idrules.MaxBlocked
)

// DefaultBlocked are blocked for every type: placeholder values SDKs and forms send.
var DefaultBlocked = idrules.DefaultBlocked

// DefaultRules are Segment's defaults: user_id priority 1 limit 1, email priority 2 limit 5;
// other types limit 5, ranked alphabetically after those.
func DefaultRules() Rules { return idrules.DefaultRules() }

// Compiled is a validated rule set, ready for resolution.
type Compiled struct{ *idrules.Compiled }

// Compile validates rules and prepares them for resolution. The error is a *ValidationError.
func Compile(r Rules) (*Compiled, error) {
	c, err := idrules.Compile(r)
	if err != nil {
		return nil, err
	}
	return &Compiled{c}, nil
}

// Blocked returns the rule that blocks id, or "" if it is usable.
func (c *Compiled) Blocked(id Identifier) string { return c.Compiled.Blocked(id.Type, id.Value) }
