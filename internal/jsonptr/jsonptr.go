// Package jsonptr builds JSON Pointers (RFC 6901), which problem details
// use to name the offending member of a request.
package jsonptr

import "strings"

// escaper escapes a reference token: "~" as "~0", "/" as "~1".
var escaper = strings.NewReplacer("~", "~0", "/", "~1")

// Append returns the pointer of the member or element token of ptr's value.
func Append(ptr, token string) string { return ptr + "/" + escaper.Replace(token) }
