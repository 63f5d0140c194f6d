// Package admintest holds what the admin adapters' tests share: a token verifier that knows one
// token ("t") and a call helper that sends a request with it. Imported by tests only.
package admintest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/serverless-cdp/cdp/internal/admintoken"
)

// Token is the one admin token OneToken accepts.
const Token = "t"

// OneToken verifies Token and refuses every other.
type OneToken struct{}

// Verify implements the router's token check.
func (OneToken) Verify(_ context.Context, tok string) (admintoken.Token, error) {
	if tok != Token {
		return admintoken.Token{}, admintoken.ErrNotFound
	}
	return admintoken.Token{ID: "tok_1"}, nil
}

// Call sends one request with Token to h and returns the status and body.
func Call(t *testing.T, h http.Handler, method, path, body string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+Token)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w.Code, w.Body.String()
}
