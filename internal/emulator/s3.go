package emulator

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// S3Server is an S3-compatible server for the archive's tests: gofakes3
// (github.com/johannesboyne/gofakes3, in-memory backend) served over real HTTP on BindHost,
// so the S3 client talks to it exactly as to S3 (path-style addressing, SigV4 headers, XML
// answers, ListObjectsV2 paging). It runs inside the test process: nothing to install, and
// its objects vanish with the process.
type S3Server struct {
	Endpoint string // http://127.0.0.1:<port>, for AWS_ENDPOINT_URL_S3
	srv      *http.Server
	done     chan struct{}
}

// StartS3 starts the S3 server on port (0: a free port) and returns once it accepts
// connections. Buckets are created on first use (gofakes3's auto-bucket), like a bucket the
// stack created beforehand.
func StartS3(port int) (*S3Server, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(BindHost, strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("start S3 server: %w", err)
	}
	fake := gofakes3.New(s3mem.New(), gofakes3.WithAutoBucket(true), gofakes3.WithoutVersioning())
	s := &S3Server{
		Endpoint: "http://" + ln.Addr().String(),
		srv:      &http.Server{Handler: fake.Server(), ReadHeaderTimeout: 10 * time.Second},
		done:     make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln) // ErrServerClosed after Stop; any other failure fails the requests

	}()
	return s, nil
}

// Stop closes the server and waits until it stopped serving.
func (s *S3Server) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
	<-s.done
}
