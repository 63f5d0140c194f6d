package httpapi

import (
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
)

// MaxRequestBytes is API Gateway's payload limit; larger bodies get 413 from ServeHTTP.
const MaxRequestBytes = 10 << 20

// HTTPHandler serves a Handler over net/http the way API Gateway (payload format 2.0) would call
// it: used by tests and usable by the local runner.
func HTTPHandler(h Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := FromHTTP(r)
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				WriteHTTP(w, Error(http.StatusRequestEntityTooLarge, CodePayloadTooLarge, "request body too large"))
				return
			}
			WriteHTTP(w, Error(http.StatusBadRequest, CodeInvalidRequest, "could not read request body"))
			return
		}
		resp, err := h.Handle(r.Context(), req)
		if err != nil {
			resp = Error(http.StatusInternalServerError, CodeInternal, "internal error")
		}
		WriteHTTP(w, resp)
	})
}

// FromHTTP converts a net/http request into an API Gateway v2 request event. Bodies that are not
// valid UTF-8 (gzip, binary) are base64-encoded with IsBase64Encoded set, as API Gateway does.
func FromHTTP(r *http.Request) (Request, error) {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, MaxRequestBytes))
	if err != nil {
		return Request{}, err
	}
	headers := make(map[string]string, len(r.Header))
	for k, vs := range r.Header {
		if strings.EqualFold(k, "cookie") {
			continue
		}
		headers[strings.ToLower(k)] = strings.Join(vs, ",")
	}
	if r.Host != "" {
		headers["host"] = r.Host
	}
	var cookies []string
	for _, c := range r.Cookies() {
		cookies = append(cookies, c.String())
	}
	var query map[string]string
	if q := r.URL.Query(); len(q) > 0 {
		query = make(map[string]string, len(q))
		for k, vs := range q {
			query[k] = strings.Join(vs, ",")
		}
	}
	ip, _, _ := net.SplitHostPort(r.RemoteAddr)
	now := time.Now()
	req := Request{
		Version:               "2.0",
		RouteKey:              "$default",
		RawPath:               r.URL.EscapedPath(),
		RawQueryString:        r.URL.RawQuery,
		Cookies:               cookies,
		Headers:               headers,
		QueryStringParameters: query,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey:  "$default",
			Stage:     "$default",
			RequestID: strconv.FormatInt(now.UnixNano(), 36),
			Time:      now.UTC().Format("02/Jan/2006:15:04:05 -0700"),
			TimeEpoch: now.UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method:    r.Method,
				Path:      r.URL.Path,
				Protocol:  r.Proto,
				SourceIP:  ip,
				UserAgent: r.UserAgent(),
			},
		},
	}
	if utf8.Valid(body) {
		req.Body = string(body)
	} else {
		req.Body = base64.StdEncoding.EncodeToString(body)
		req.IsBase64Encoded = true
	}
	return req, nil
}

// WriteHTTP writes an API Gateway v2 response to a net/http response writer.
func WriteHTTP(w http.ResponseWriter, resp Response) {
	for k, v := range resp.Headers {
		w.Header().Set(k, v)
	}
	for k, vs := range resp.MultiValueHeaders {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	for _, c := range resp.Cookies {
		w.Header().Add("Set-Cookie", c)
	}
	body := []byte(resp.Body)
	if resp.IsBase64Encoded {
		if b, err := base64.StdEncoding.DecodeString(resp.Body); err == nil {
			body = b
		}
	}
	status := resp.StatusCode
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
