package admin

import (
	"errors"
	"net/url"
	"sort"
	"unicode"

	"github.com/aws/smithy-go"

	"github.com/serverless-cdp/cdp/internal/tracking"
)

// Limits on request input checked by the router for every route, before any handler or store
// sees it: a path parameter (an id) becomes part of a DynamoDB key, and nothing longer than
// these can name a stored resource.
const (
	// MaxParamBytes bounds every path parameter, after unescaping.
	MaxParamBytes = tracking.MaxIDBytes
	// MaxQueryBytes bounds every query parameter (paging cursors included).
	MaxQueryBytes = 2048
)

// unescapeAndCheck unescapes the path parameters in place and checks them and the query.
func unescapeAndCheck(params, query map[string]string) *Error {
	for k, v := range params {
		u, err := url.PathUnescape(v)
		if err != nil {
			return BadRequest("bad escape in path parameter %s", k)
		}
		params[k] = u
	}
	return checkInput(params, query)
}

// checkInput validates the path parameters and query parameters every route shares. Each
// listing checks its own `limit` range.
func checkInput(params map[string]string, query map[string]string) *Error {
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v := params[k]
		if len(v) > MaxParamBytes {
			return BadRequest("path parameter %s is %d bytes; the limit is %d", k, len(v), MaxParamBytes)
		}
		if !tracking.ValidUTF8ID(v) {
			return BadRequest("path parameter %s is not valid UTF-8", k)
		}
	}
	for k, v := range query {
		if len(v) > MaxQueryBytes {
			return BadRequest("query parameter %.64s is %d bytes; the limit is %d", k, len(v), MaxQueryBytes)
		}
		if !printable(v) {
			return BadRequest("query parameter %.64s is not printable UTF-8", k)
		}
	}
	return nil
}

func printable(s string) bool {
	if !tracking.ValidUTF8ID(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// refused says whether err is DynamoDB refusing a request it was given (ValidationException: a
// key too long, a paging token that is not a key of the listing): it comes from the caller's
// input (a 400), not from a failure worth retrying.
func refused(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "ValidationException"
}
