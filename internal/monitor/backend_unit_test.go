//go:build !integration

package monitor

// integrationBackends is empty without the integration build tag: no emulator is started.
func integrationBackends() []backend { return nil }
