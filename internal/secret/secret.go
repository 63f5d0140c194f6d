// Package secret draws random strings for keys, tokens and ids from crypto/rand.
package secret

import "crypto/rand"

// Alphabets for String.
const (
	Alphanumeric = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	LowerDigits  = "abcdefghijklmnopqrstuvwxyz0123456789"
)

// String returns n characters drawn uniformly from alphabet (at most 256 characters long).
func String(alphabet string, n int) string {
	limit := 256 - 256%len(alphabet) // rejecting bytes >= limit keeps the distribution uniform
	out := make([]byte, 0, n)
	buf := make([]byte, n*2)
	for len(out) < n {
		if _, err := rand.Read(buf); err != nil {
			panic("crypto/rand failed: " + err.Error()) // never happens on supported platforms
		}
		for _, b := range buf {
			if int(b) < limit && len(out) < n {
				out = append(out, alphabet[int(b)%len(alphabet)])
			}
		}
	}
	return string(out)
}
