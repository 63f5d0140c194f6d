//go:build !integration

package profile_test

// integrationBackends is empty without the integration build tag: no emulator is started.
func integrationBackends() []backend { return nil }
