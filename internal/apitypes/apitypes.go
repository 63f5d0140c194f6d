// Package apitypes holds the admin API's wire types that both ends share: the server (package
// admin and its resource adapters) answers with them and the cdp CLI (package config) decodes
// them. It imports no server code, so the CLI links none.
package apitypes

// Prefix is the path prefix of every admin route.
const Prefix = "/admin/v1"

// ErrorBody is the JSON body of every error answer: {"code","message"}.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// SourceWithKey answers the calls that make a write key: the key is shown this once.
type SourceWithKey struct {
	Source   Source `json:"source"`
	WriteKey string `json:"writeKey"`
}

// SourceList answers GET /admin/v1/sources.
type SourceList struct {
	Sources []Source `json:"sources"`
}

// CreateSourceRequest is the body of POST /admin/v1/sources.
type CreateSourceRequest struct {
	Name string `json:"name"`
}

// RotateKeyRequest is the optional body of POST /admin/v1/sources/{id}/rotate-key.
type RotateKeyRequest struct {
	// GraceSeconds keeps the previous keys working this long (0: they stop at once).
	GraceSeconds int64 `json:"graceSeconds"`
}
