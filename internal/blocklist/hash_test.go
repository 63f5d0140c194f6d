package blocklist

import (
	"strings"
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
