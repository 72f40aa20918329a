package store

import (
	"crypto/rand"
	"encoding/base32"
	"strings"
)

// NewAuditID returns a new audit event ID: "aud_" and 26 lowercase base32
// characters of 128 random bits, the form tenants.NewID gives tenant IDs.
// Both adapters' AuditAppend call it for an event without an ID.
func NewAuditID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails on supported platforms
	return "aud_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}
