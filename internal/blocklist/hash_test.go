package blocklist

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"sync"
	"testing"
)

func TestHasherIsKeyedAndSeparatesKinds(t *testing.T) {
	a, b := NewHasher([]byte("0123456789abcdef")), NewHasher([]byte("fedcba9876543210"))
	if a.Identifier("email:ann@example.com") == b.Identifier("email:ann@example.com") {
		t.Fatal("hashes under different keys must differ")
	}
	if a.Identifier("x") == a.Profile("x") {
		t.Fatal("identifier and profile hashes must differ")
	}
	if a.Identifier("email:ann@example.com") != a.Identifier("email:ann@example.com") {
		t.Fatal("hash must be stable")
	}
}

func TestMaskHidesTheValue(t *testing.T) {
	for in, want := range map[string]string{
		"email:ann@example.com": "email:a…@e….com",
		"user_id:u-12345":       "user_id:u…(7)",
		"nocolon":               "…",
	} {
		got := Mask(in)
		if got != want {
			t.Errorf("Mask(%q) = %q, want %q", in, got, want)
		}
		if _, v, _ := strings.Cut(in, ":"); len(v) > 1 && strings.Contains(got, v) {
			t.Errorf("mask of %q reveals the value", in)
		}
	}
}

// The pooled HMAC states give the same hashes as a fresh HMAC, also used concurrently.
func TestHasherPoolIsTransparent(t *testing.T) {
	key := []byte("0123456789abcdef")
	want := func(kind, v string) string {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(kind + "\x00" + v))
		return hex.EncodeToString(m.Sum(nil)[:20])
	}
	h := NewHasher(key)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				v := "user_id:u" + strconv.Itoa(g*1000+i)
				if h.Identifier(v) != want("id", v) || h.Profile(v) != want("profile", v) {
					t.Errorf("hash of %s differs from HMAC-SHA256", v)
					return
				}
			}
		}()
	}
	wg.Wait()
}
