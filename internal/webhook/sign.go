// Package webhook signs outgoing webhook requests and sends them through an HTTP client that
// cannot be pointed at the operator's own network.
//
// Signing: Standard Webhooks (https://www.standardwebhooks.com) by default — headers `webhook-id`,
// `webhook-timestamp` (Unix seconds) and `webhook-signature`, a space-separated list of
// `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, one per live secret (two during a secret
// rotation). Secrets are `whsec_` + base64 of 32 random bytes. Optionally Segment's legacy
// `X-Signature`: hex HMAC-SHA1 of the body, keyed with the secret string as configured.
//
// Safety: the Client refuses, at dial time (net.Dialer.Control, after DNS resolution, so DNS
// rebinding cannot bypass it), every address that is not public unicast: loopback, private
// (RFC 1918, fc00::/7), link-local (169.254/16, fe80::/10), CGNAT, unspecified, multicast,
// broadcast, documentation/benchmark ranges, and the same inside IPv4-mapped (::ffff:a.b.c.d) and
// NAT64 (64:ff9b::/96) IPv6 addresses — unless the operator allows private or loopback targets.
// It never follows redirects (a 3xx is returned to the caller, which treats it as a permanent
// failure), ignores proxy environment variables, and reads at most MaxResponseBytes of a body.
package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names.
const (
	HeaderID         = "webhook-id"
	HeaderTimestamp  = "webhook-timestamp"
	HeaderSignature  = "webhook-signature"
	HeaderXSignature = "X-Signature"
	SecretPrefix     = "whsec_"
)

// Signing modes.
const (
	ModeStandard = "standard" // Standard Webhooks (default)
	ModeSegment  = "segment"  // Segment's legacy X-Signature (hex HMAC-SHA1 of the body)
)

// ErrBadSecret is returned for a secret that is not `whsec_` + base64.
var ErrBadSecret = errors.New("webhook secret must be whsec_ followed by base64 (at least 24 bytes)")

// NewSecret returns a fresh random secret: `whsec_` + base64 of 32 bytes.
func NewSecret() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("webhook: crypto/rand: %v", err)) // never happens on supported platforms
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(b)
}

// SecretKey decodes a `whsec_` secret into its HMAC key.
func SecretKey(secret string) ([]byte, error) {
	if !strings.HasPrefix(secret, SecretPrefix) {
		return nil, ErrBadSecret
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, SecretPrefix))
	if err != nil || len(key) < 24 {
		return nil, ErrBadSecret
	}
	return key, nil
}

// StandardSignature returns the `webhook-signature` value for one message: `v1,<sig>` for each
// secret, space-separated, in the order given.
func StandardSignature(id string, ts time.Time, body []byte, secrets ...string) (string, error) {
	if len(secrets) == 0 {
		return "", errors.New("webhook: no signing secret")
	}
	sigs := make([]string, 0, len(secrets))
	for _, s := range secrets {
		key, err := SecretKey(s)
		if err != nil {
			return "", err
		}
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(id))
		mac.Write([]byte{'.'})
		mac.Write([]byte(strconv.FormatInt(ts.Unix(), 10)))
		mac.Write([]byte{'.'})
		mac.Write(body)
		sigs = append(sigs, "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	}
	return strings.Join(sigs, " "), nil
}

// SegmentSignature is Segment's legacy X-Signature: hex HMAC-SHA1 of the body keyed with the
// secret string.
func SegmentSignature(secret string, body []byte) string {
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// Sign sets the signature headers of one request on h. mode is ModeStandard (or empty) or
// ModeSegment; secrets are the live secrets, current first (Segment mode signs with the first).
// The webhook-id and webhook-timestamp headers are set in both modes so receivers can dedupe.
func Sign(h http.Header, mode, id string, ts time.Time, body []byte, secrets []string) error {
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	switch mode {
	case "", ModeStandard:
		sig, err := StandardSignature(id, ts, body, secrets...)
		if err != nil {
			return err
		}
		h.Set(HeaderSignature, sig)
	case ModeSegment:
		if len(secrets) == 0 {
			return errors.New("webhook: no signing secret")
		}
		h.Set(HeaderXSignature, SegmentSignature(secrets[0], body))
	default:
		return fmt.Errorf("webhook: unknown signing mode %q", mode)
	}
	return nil
}
