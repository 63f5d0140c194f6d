// Package blocklist keeps the list every stage checks before storing or delivering anything
// about a person: keyed hashes (HMAC-SHA256 under the deployment's privacy key) of suppressed
// identifiers and of erased profiles. It stores no identifier, only hashes and masked labels.
//
// Store is the list (DynamoStore in the shared table, MemStore in memory; one conformance suite
// runs against both); Checker is what a stage asks per record, from a copy it refreshes at most
// once per interval. Keys in the shared table:
//
//   - `BLOCKLIST` / `VERSION`: the version (`v`), incremented after every change; a checker
//     reads only this item (strongly consistent) and reloads the list when it changed.
//   - `BLOCKLIST` / `I#<identifier hash>#<group>`: a suppressed identifier (kind "identifier"),
//     with its group (the privacy request id), masked label and createdAt. The same identifier
//     may be held by several groups.
//   - `BLOCKLIST` / `P#<profile hash>#<group>`: an erased profile (kind "profile"), with `ttl`:
//     it only has to outlive the records still in flight about the profile.
//   - `BLOCKLIST#DROPPED` / `<source id>`: how many records of a source were dropped because they
//     carried a suppressed identifier (`n`, an ADD counter).
package blocklist

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// Hasher computes the keyed hashes the list and the privacy audit log store. It is safe for
// concurrent use; keyed HMAC states are reused (a stage hashes every record's identifiers).
type Hasher struct {
	key  []byte
	macs *sync.Pool // of keyed hash.Hash
}

// NewHasher returns a hasher under key (at least 16 bytes; the composition root reads it from
// the configuration once).
func NewHasher(key []byte) Hasher {
	k := append([]byte(nil), key...)
	return Hasher{key: k, macs: &sync.Pool{New: func() any { return hmac.New(sha256.New, k) }}}
}

func (h Hasher) sum(kind, value string) string {
	var m hash.Hash
	if h.macs != nil {
		m = h.macs.Get().(hash.Hash)
		defer h.macs.Put(m)
		m.Reset()
	} else {
		m = hmac.New(sha256.New, h.key)
	}
	m.Write([]byte(kind))
	m.Write([]byte{0})
	m.Write([]byte(value))
	var buf [sha256.Size]byte
	return hex.EncodeToString(m.Sum(buf[:0])[:20])
}

// Identifier hashes a normalized identifier "type:value".
func (h Hasher) Identifier(id string) string { return h.sum("id", id) }

// Profile hashes a profile id.
func (h Hasher) Profile(id string) string { return h.sum("profile", id) }

// Mask shows an identifier "type:value" without revealing it: the type, the first character
// of the value and its length in bytes — e.g. "user_id:u…(8)" — and for emails the first
// character of the local part and of the domain, and the top-level domain — e.g.
// "email:a…@e….com". A part of one character shows none (it would be all of it). Masked
// labels are what the audit log keeps.
func Mask(id string) string {
	t, v, ok := strings.Cut(id, ":")
	if !ok {
		return "…"
	}
	first := func(s string) string { // nothing of a one-character part: it would be all of it
		if utf8.RuneCountInString(s) < 2 {
			return ""
		}
		r, _ := utf8.DecodeRuneInString(s)
		return string(r)
	}
	if local, domain, ok := strings.Cut(v, "@"); ok && t == "email" {
		tld := ""
		if i := strings.LastIndexByte(domain, '.'); i >= 0 {
			tld = domain[i:]
		}
		return t + ":" + first(local) + "…@" + first(domain) + "…" + tld
	}
	return t + ":" + first(v) + "…(" + strconv.Itoa(len(v)) + ")"
}
