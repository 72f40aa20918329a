// Package jsonptr builds JSON Pointers (RFC 6901), which problem details
// use to name the offending member of a request.
package jsonptr

import "strings"

var escaper = strings.NewReplacer("~", "~0", "/", "~1")

// Escape escapes one reference token: "~" as "~0", "/" as "~1".
func Escape(token string) string { return escaper.Replace(token) }

// Append returns the pointer of the member or element token of ptr's value.
func Append(ptr, token string) string { return ptr + "/" + Escape(token) }
