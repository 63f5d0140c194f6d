//go:build !integration

package archive

// integrationBackends is empty without the integration build tag: no S3 server is started.
func integrationBackends() []backend { return nil }
