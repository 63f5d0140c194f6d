//go:build !integration

package identity

// integrationBackends is empty without the integration build tag: no emulator is started.
func integrationBackends() []backend { return nil }

// integrationHandlerBackends is empty without the integration build tag.
func integrationHandlerBackends() []handlerBackend { return nil }
