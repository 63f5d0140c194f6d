package httpapi_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/serverless-cdp/cdp/internal/httpapi"
)

// TestToHTTPQuery: the handler sees the raw query as the client sent it when it parses (a
// repeated key keeps its values apart, where API Gateway's parameters join them with commas),
// API Gateway's parameters otherwise.
func TestToHTTPQuery(t *testing.T) {
	for _, c := range []struct {
		raw    string
		params map[string]string
		want   map[string][]string
	}{
		{"a=1&a=2&b=x+y", map[string]string{"a": "1,2", "b": "x y"}, map[string][]string{"a": {"1", "2"}, "b": {"x y"}}},
		{"a=%zz", map[string]string{"a": "ok"}, map[string][]string{"a": {"ok"}}},
		{"", map[string]string{"q": "x y"}, map[string][]string{"q": {"x y"}}},
		{"n=1", nil, map[string][]string{"n": {"1"}}},
	} {
		r, err := httpapi.ToHTTP(context.Background(), httpapi.Request{RawPath: "/p", RawQueryString: c.raw, QueryStringParameters: c.params})
		if err != nil {
			t.Fatal(err)
		}
		if got := map[string][]string(r.URL.Query()); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q %v: got %v, want %v", c.raw, c.params, got, c.want)
		}
	}
}
