package secret_test

import (
	"strings"
	"testing"

	"github.com/serverless-cdp/cdp/internal/secret"
)

func TestStringUsesOnlyTheAlphabetUniformly(t *testing.T) {
	const n = 62 * 2000
	s := secret.String(secret.Alphanumeric, n)
	if len(s) != n {
		t.Fatalf("length %d", len(s))
	}
	counts := map[rune]int{}
	for _, r := range s {
		if !strings.ContainsRune(secret.Alphanumeric, r) {
			t.Fatalf("%q is not in the alphabet", r)
		}
		counts[r]++
	}
	// Each of the 62 characters is expected 2,000 times; a modulo-biased draw would give the
	// first 8 characters about 2,460 (256 % 62 = 8 extra byte values).
	for r, c := range counts {
		if c < 1700 || c > 2300 {
			t.Fatalf("%q drawn %d times, expected about 2000", r, c)
		}
	}
	if len(counts) != 62 || secret.String(secret.Alphanumeric, 32) == secret.String(secret.Alphanumeric, 32) {
		t.Fatal("not random")
	}
}
