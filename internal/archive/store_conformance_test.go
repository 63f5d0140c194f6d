package archive

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// backend opens an empty store of one implementation.
type backend struct {
	name string
	open func(t testing.TB) Store
}

// backends are the Store implementations every conformance case runs against: the folder, and
// with the integration tag S3 on an S3-compatible server.
func backends() []backend {
	return append([]backend{{name: "folder", open: func(t testing.TB) Store { return Folder{Root: t.TempDir()} }}}, integrationBackends()...)
}

func forEachStore(t *testing.T, fn func(t *testing.T, st Store)) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) { fn(t, b.open(t)) })
	}
}

func listAll(t *testing.T, st Store, prefix string) []string {
	t.Helper()
	var keys []string
	if err := st.List(context.Background(), prefix, func(k string) error { keys = append(keys, k); return nil }); err != nil {
		t.Fatalf("list %q: %v", prefix, err)
	}
	return keys
}

func TestStorePutGetReplace(t *testing.T) {
	forEachStore(t, func(t *testing.T, st Store) {
		ctx := context.Background()
		k := "source=s/dt=2026-11-30/hour=10/a.json.gz"
		if _, err := st.Get(ctx, k); !errors.Is(err, ErrNotFound) {
			t.Fatalf("get missing: %v", err)
		}
		if err := st.Put(ctx, k, []byte("one")); err != nil {
			t.Fatal(err)
		}
		if err := st.Put(ctx, k, []byte("two, longer")); err != nil {
			t.Fatal(err)
		}
		got, err := st.Get(ctx, k)
		if err != nil || string(got) != "two, longer" {
			t.Fatalf("get after replace: %q %v", got, err)
		}
		if keys := listAll(t, st, ""); !slices.Equal(keys, []string{k}) {
			t.Fatalf("a replaced object is listed once: %v", keys)
		}
		if err := st.Put(ctx, "empty.json.gz", nil); err != nil {
			t.Fatal(err)
		}
		if got, err := st.Get(ctx, "empty.json.gz"); err != nil || len(got) != 0 {
			t.Fatalf("empty object: %q %v", got, err)
		}
	})
}

func TestStoreListsByPrefixInLexicalOrder(t *testing.T) {
	forEachStore(t, func(t *testing.T, st Store) {
		ctx := context.Background()
		keys := []string{
			"source=a/dt=2026-11-30/hour=09/x.json.gz",
			"source=a/dt=2026-11-30/hour=10/x.json.gz",
			"source=a/dt=2026-11-30/hour=10/x-2.json.gz", // '-' sorts before '.' and '/'
			"source=a.b/dt=2026-11-30/hour=10/x.json.gz", // "a.b/" sorts before "a/"
			"source=ab/dt=2026-11-30/hour=10/x.json.gz",
			"source=a-1/dt=2026-12-01/hour=00/x.json.gz",
			"top.json.gz",
		}
		for _, k := range keys {
			if err := st.Put(ctx, k, []byte(k)); err != nil {
				t.Fatal(err)
			}
		}
		sorted := slices.Sorted(slices.Values(keys))
		if got := listAll(t, st, ""); !slices.Equal(got, sorted) {
			t.Fatalf("list all:\n got %v\nwant %v", got, sorted)
		}
		for prefix, want := range map[string][]string{
			"source=a/":                         {keys[0], keys[2], keys[1]},
			"source=a":                          {keys[5], keys[3], keys[0], keys[2], keys[1], keys[4]}, // a partial segment
			"source=a/dt=2026-11-30/hour=1":     {keys[2], keys[1]},
			"source=a/dt=2026-11-30/hour=10/x.": {keys[1]},
			"source=z":                          nil,
			"top":                               {keys[6]},
		} {
			if got := listAll(t, st, prefix); !slices.Equal(got, want) {
				t.Errorf("list %q:\n got %v\nwant %v", prefix, got, want)
			}
		}
	})
}

func TestStoreListStopsAtCallbackError(t *testing.T) {
	forEachStore(t, func(t *testing.T, st Store) {
		ctx := context.Background()
		for i := range 3 {
			if err := st.Put(ctx, fmt.Sprintf("k/%d.json.gz", i), []byte("x")); err != nil {
				t.Fatal(err)
			}
		}
		stop := errors.New("stop")
		n := 0
		err := st.List(ctx, "k/", func(string) error { n++; return stop })
		if !errors.Is(err, stop) || n != 1 {
			t.Fatalf("list: err %v after %d keys", err, n)
		}
	})
}

func TestStoreDelete(t *testing.T) {
	forEachStore(t, func(t *testing.T, st Store) {
		ctx := context.Background()
		if err := st.Put(ctx, "d/a.json.gz", []byte("a")); err != nil {
			t.Fatal(err)
		}
		if err := st.Put(ctx, "d/b.json.gz", []byte("b")); err != nil {
			t.Fatal(err)
		}
		if err := st.Delete(ctx, "d/a.json.gz"); err != nil {
			t.Fatal(err)
		}
		if err := st.Delete(ctx, "d/a.json.gz"); err != nil {
			t.Fatalf("delete a missing object: %v", err)
		}
		if _, err := st.Get(ctx, "d/a.json.gz"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("get deleted: %v", err)
		}
		if got := listAll(t, st, "d/"); !slices.Equal(got, []string{"d/b.json.gz"}) {
			t.Fatalf("list after delete: %v", got)
		}
	})
}

// TestStorePagesThroughManyKeys: S3 answers at most 1,000 keys per ListObjectsV2 call.
func TestStorePagesThroughManyKeys(t *testing.T) {
	forEachStore(t, func(t *testing.T, st Store) {
		ctx := context.Background()
		const n = 1234
		var want []string
		for i := range n {
			k := fmt.Sprintf("source=s/dt=2026-11-30/hour=10/o-%05d.json.gz", i)
			if err := st.Put(ctx, k, []byte{byte(i)}); err != nil {
				t.Fatal(err)
			}
			want = append(want, k)
		}
		if err := st.Put(ctx, "source=t/dt=2026-11-30/hour=10/o.json.gz", []byte("t")); err != nil {
			t.Fatal(err)
		}
		if got := listAll(t, st, "source=s/"); !slices.Equal(got, want) {
			t.Fatalf("listed %d keys, want %d in order", len(got), n)
		}
	})
}

func TestStoreLargeObject(t *testing.T) {
	forEachStore(t, func(t *testing.T, st Store) {
		ctx := context.Background()
		body := make([]byte, 5<<20+17)
		_, _ = rand.Read(body)
		if err := st.Put(ctx, "big/o.json.gz", body); err != nil {
			t.Fatal(err)
		}
		got, err := st.Get(ctx, "big/o.json.gz")
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("5 MB object: %d bytes back, %v", len(got), err)
		}
	})
}

func TestOpen(t *testing.T) {
	cfg := aws.Config{Region: "us-east-1"}
	if st, err := Open(cfg, "/var/cdp/archive", false); err != nil || st != (Folder{Root: "/var/cdp/archive"}) {
		t.Fatalf("folder: %#v %v", st, err)
	}
	for loc, want := range map[string][2]string{
		"s3://b":           {"b", ""},
		"s3://b/":          {"b", ""},
		"s3://b/raw":       {"b", "raw/"},
		"s3://b/raw/2026/": {"b", "raw/2026/"},
	} {
		st, err := Open(cfg, loc, true)
		s, ok := st.(*S3)
		if err != nil || !ok || s.Bucket != want[0] || s.Prefix != want[1] {
			t.Errorf("%s: %#v %v", loc, st, err)
		}
	}
	for _, bad := range []string{"", "s3://", "s3:///x"} {
		if _, err := Open(cfg, bad, false); err == nil {
			t.Errorf("%q opened", bad)
		}
	}
}
