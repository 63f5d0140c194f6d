//go:build integration

package archive

import (
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/serverless-cdp/cdp/internal/emulator/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// integrationBackends is S3 on the test harness's S3-compatible server (gofakes3 over HTTP),
// one fresh bucket per test.
func integrationBackends() []backend {
	return []backend{{name: "s3", open: func(t testing.TB) Store {
		c := testenv.S3(t)
		return &S3{Client: c, Bucket: testenv.Bucket(t, c)}
	}}}
}

// countingS3 counts the ListObjectsV2 calls.
type countingS3 struct {
	S3API
	lists int
}

func (c *countingS3) ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, o ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	c.lists++
	return c.S3API.ListObjectsV2(ctx, in, o...)
}

// TestS3ListFollowsPages: the server answers 1,000 keys per page, and List follows the pages.
func TestS3ListFollowsPages(t *testing.T) {
	ctx := context.Background()
	c := testenv.S3(t)
	cs := &countingS3{S3API: c}
	st := &S3{Client: cs, Bucket: testenv.Bucket(t, c), Prefix: "archive/"}
	for i := range 1001 {
		if err := st.Put(ctx, fmt.Sprintf("k/%04d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	if err := st.List(ctx, "k/", func(k string) error {
		if want := fmt.Sprintf("k/%04d", n); k != want {
			t.Fatalf("key %d: %q, want %q (the store's prefix is not part of a key)", n, k, want)
		}
		n++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n != 1001 || cs.lists != 2 {
		t.Fatalf("listed %d keys in %d calls, want 1001 in 2", n, cs.lists)
	}
}
