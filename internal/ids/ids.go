// Package ids makes the IDs of Cairn's resources: a prefix that names the
// kind ("ten_", "seg_", "prof_") and 26 characters of [a-z2-7], the one ID
// alphabet of the API, holding 128 bits.
//
// New IDs encode their bits over Alphabet, which is those 32 characters in
// ASCII order, so that IDs whose bits start with a time (Encode) sort by it
// as strings. IDs made by earlier versions are of the same characters
// (random ones in RFC 4648's order, which carried no meaning), so they stay
// valid; segment IDs made before this package were base32hex ([0-9a-v]),
// which the contract's segment_id pattern still accepts. IDs derived from a
// hash (Derive) keep RFC 4648's order, so that the same parts give the same
// ID across versions.
//
// Every function is safe for concurrent use.
package ids

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"strings"
)

// Alphabet is the characters of every ID, in the order that encodes bits.
const Alphabet = "234567abcdefghijklmnopqrstuvwxyz"

var (
	encoding = base32.NewEncoding(Alphabet).WithPadding(base32.NoPadding)
	// derived is RFC 4648's base32 in lowercase: the same characters, in
	// the order that derived IDs were first made with.
	derived = base32.NewEncoding(strings.ToLower("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")).WithPadding(base32.NoPadding)
)

// Len is the length of an ID after its prefix.
const Len = 26

// New returns prefix and 26 characters of 128 random bits. IDs made by New
// carry no order.
func New(prefix string) string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails on supported platforms
	return Encode(prefix, b)
}

// Encode returns prefix and the 26 characters of b, for IDs whose maker
// lays their bits out: a time first makes IDs that sort by it.
func Encode(prefix string, b [16]byte) string {
	return prefix + encoding.EncodeToString(b[:])
}

// Derive returns prefix and the first 26 characters of the SHA-256 of
// parts: the same parts always give the same ID, and the ID says nothing of
// them.
func Derive(prefix string, parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return prefix + derived.EncodeToString(sum[:])[:Len]
}

// Random returns n random bytes in the ID alphabet, for secrets that look
// like IDs (a source's write key).
func Random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return encoding.EncodeToString(b)
}
