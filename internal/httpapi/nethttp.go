package httpapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
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

// ToHTTP converts an API Gateway v2 request event into a net/http request, the inverse of
// FromHTTP: the method, the raw path (URL.Path is the raw path when it does not unescape, so a
// handler can answer a bad escape itself), the query (RawQueryString as the client sent it when
// it parses, so repeated keys stay separate values; else QueryStringParameters), the headers and cookies, and the body decoded from base64 if needed (a body
// that is not valid base64 or too large fails when read, so the handler answers it in its
// turn). The event itself stays reachable through Event(r.Context()).
func ToHTTP(ctx context.Context, req Request) (*http.Request, error) {
	var body io.Reader
	if b, err := Body(req, MaxRequestBytes); err == nil {
		body = bytes.NewReader(b)
	} else {
		body = errReader{err}
	}
	raw := Path(req)
	u := &url.URL{Path: raw}
	if p, err := url.PathUnescape(raw); err == nil {
		u.Path, u.RawPath = p, raw
	}
	if _, err := url.ParseQuery(req.RawQueryString); req.RawQueryString != "" && err == nil {
		u.RawQuery = req.RawQueryString
	} else if len(req.QueryStringParameters) > 0 {
		q := url.Values{}
		for k, v := range req.QueryStringParameters {
			q.Set(k, v)
		}
		u.RawQuery = q.Encode()
	} else {
		u.RawQuery = req.RawQueryString
	}
	r, err := http.NewRequestWithContext(context.WithValue(ctx, eventKey{}, &req), http.MethodGet, "/", body)
	if err != nil {
		return nil, err
	}
	r.Method = strings.ToUpper(req.RequestContext.HTTP.Method) // as sent, even empty
	r.URL, r.RequestURI = u, u.RequestURI()
	for k, v := range req.Headers {
		r.Header.Set(k, v)
	}
	if len(req.Cookies) > 0 {
		r.Header.Set("Cookie", strings.Join(req.Cookies, "; "))
	}
	r.Host = req.RequestContext.DomainName // the API's domain name, else the Host header
	if r.Host == "" {
		r.Host = Header(req, "host")
	}
	r.RemoteAddr = req.RequestContext.HTTP.SourceIP
	return r, nil
}

type eventKey struct{}

// errReader fails every read with err.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// RawPath is the request path as the client sent it, undecoded: the event's path for a request
// made by ToHTTP, else r.URL.EscapedPath().
func RawPath(r *http.Request) string {
	if e := Event(r.Context()); e != nil {
		return Path(*e)
	}
	return r.URL.EscapedPath()
}

// Event returns the API Gateway event a request made by ToHTTP came from (nil otherwise).
func Event(ctx context.Context) *Request {
	e, _ := ctx.Value(eventKey{}).(*Request)
	return e
}

// Lambda serves a net/http handler as an API Gateway v2 handler: the one adapter between the
// two (FromHTTP and WriteHTTP go the other way, for the local runner). Header names are kept as
// the handler wrote them; a body that is not UTF-8 is returned base64-encoded.
func Lambda(h http.Handler) HandlerFunc {
	return func(ctx context.Context, req Request) (Response, error) {
		r, err := ToHTTP(ctx, req)
		if err != nil {
			return Error(http.StatusBadRequest, CodeInvalidRequest, err.Error()), nil
		}
		w := &recorder{header: http.Header{}}
		h.ServeHTTP(w, r)
		return w.response(), nil
	}
}

// recorder is the http.ResponseWriter Lambda hands to the handler.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *recorder) Header() http.Header { return w.header }

func (w *recorder) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *recorder) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(b)
}

func (w *recorder) response() Response {
	resp := Response{StatusCode: w.status, Headers: make(map[string]string, len(w.header))}
	if resp.StatusCode == 0 {
		resp.StatusCode = http.StatusOK
	}
	for k, vs := range w.header {
		if k == "Set-Cookie" { // payload format 2.0 answers cookies apart: joined, they would break
			resp.Cookies = append(resp.Cookies, vs...)
			continue
		}
		resp.Headers[k] = strings.Join(vs, ",")
	}
	if b := w.body.Bytes(); utf8.Valid(b) {
		resp.Body = string(b)
	} else {
		resp.Body, resp.IsBase64Encoded = base64.StdEncoding.EncodeToString(b), true
	}
	return resp
}

// WriteJSON writes v as a JSON answer that is never cached (the same headers as JSON).
func WriteJSON(w http.ResponseWriter, status int, v any) {
	writeResponse(w, JSON(status, v))
}

// WriteError writes an error answer {"code","message"} (the same headers as Error).
func WriteError(w http.ResponseWriter, status int, code, message string) {
	writeResponse(w, Error(status, code, message))
}

// writeResponse writes resp keeping its header names as they are (lower case, as API Gateway
// answers carry them).
func writeResponse(w http.ResponseWriter, resp Response) {
	for k, v := range resp.Headers {
		w.Header()[k] = []string{v}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.WriteString(w, resp.Body)
}
