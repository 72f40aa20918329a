// Package page is the one cursor scheme every Cairn list endpoint uses.
//
// A cursor is opaque to clients: base64url of a version byte and the store
// sequence number of the last item on the previous page. Lists are ordered
// by that sequence, which only grows, so paging through a list that is being
// written to never repeats an item nor skips one that existed when paging
// began.
package page

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
)

// Limits for the limit query parameter.
const (
	DefaultLimit = 50
	MaxLimit     = 200
)

// ErrBadCursor is returned by Decode for a cursor this package did not make.
var ErrBadCursor = errors.New("malformed cursor")

const version = 1

// Encode returns the cursor that continues after seq.
func Encode(seq int64) string {
	b := make([]byte, 1, 1+binary.MaxVarintLen64)
	b[0] = version
	b = binary.AppendVarint(b, seq)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Decode returns the sequence number in cursor; the empty cursor is 0, the
// start of the list.
func Decode(cursor string) (int64, error) {
	if cursor == "" {
		return 0, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || len(b) < 2 || b[0] != version {
		return 0, ErrBadCursor
	}
	seq, n := binary.Varint(b[1:])
	if n != len(b)-1 || seq < 0 {
		return 0, ErrBadCursor
	}
	return seq, nil
}

// Limit applies the default to a missing limit; the API validates range.
func Limit(limit *int) int {
	if limit == nil {
		return DefaultLimit
	}
	return *limit
}

// Trim takes items fetched with a limit of limit+1 and returns the page
// and the cursor for the page after it, nil when there is none. seq gives an
// item's sequence number.
func Trim[T any](items []T, limit int, seq func(T) int64) ([]T, *string) {
	if len(items) <= limit {
		return items, nil
	}
	items = items[:limit]
	c := Encode(seq(items[len(items)-1]))
	return items, &c
}

// TrimString is Trim for lists ordered by a store's own position: pos
// gives an item's position (EncodeString).
func TrimString[T any](items []T, limit int, pos func(T) string) ([]T, *string) {
	if len(items) <= limit {
		return items, nil
	}
	items = items[:limit]
	c := EncodeString(pos(items[len(items)-1]))
	return items, &c
}

// EncodeString returns an opaque cursor for a store's own position (a sort
// key), for lists ordered by something other than a sequence number.
func EncodeString(pos string) string {
	return base64.RawURLEncoding.EncodeToString(append([]byte{version + 1}, pos...))
}

// DecodeString returns the position in a cursor made by EncodeString.
func DecodeString(cursor string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || len(b) < 2 || b[0] != version+1 {
		return "", ErrBadCursor
	}
	return string(b[1:]), nil
}
