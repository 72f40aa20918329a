package profiles

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// The combined aggregates item is read and written by every evaluation
// of an event that a segment counts, so it is stored in a compact binary
// form rather than JSON: about a third of the bytes, decoded and encoded
// several times faster. Items written as JSON before still decode (their
// first byte is '{'); the next write of one is binary.
//
//	0x01                        the form's first byte (aggregatesBinary)
//	uvarint                     how many leaves; then each leaf:
//	  string                    its key
//	  byte                      flags: 1 Partial, 2 Backfilled, 4 days as strings
//	  varint                    Dropped
//	  uvarint                   how many days; then each day:
//	    varint or string        the day: days since 1970-01-01, or (flag 4) as in Days
//	    uvarint                 its count
//	  uvarint                   how many times in Recent; then the newest (varint)
//	                            and each next one's distance below the one before (uvarint)
//	  strings                   Seen, then Skip
//
// A string is its length (uvarint) and its bytes; strings are how many
// (uvarint), then each.

// aggregatesBinary is the first byte of the binary form.
const aggregatesBinary = 0x01

const (
	aggPartial = 1 << iota
	aggBackfilled
	aggDayStrings
)

// encodeAggregates returns the binary form of leaves.
func encodeAggregates(leaves map[string]*EventAggregate) []byte {
	n := 8
	for k, a := range leaves {
		n += len(k) + 16 + 6*len(a.Days) + 3*len(a.Recent)
	}
	b := make([]byte, 0, n)
	b = append(b, aggregatesBinary)
	b = binary.AppendUvarint(b, uint64(len(leaves)))
	for k, a := range leaves {
		if a == nil {
			a = &EventAggregate{}
		}
		b = appendString(b, k)
		flags := byte(0)
		if a.Partial {
			flags |= aggPartial
		}
		if a.Backfilled {
			flags |= aggBackfilled
		}
		at := len(b) // the flags, which the days may change
		b = append(b, flags)
		b = binary.AppendVarint(b, a.Dropped)
		b = binary.AppendUvarint(b, uint64(len(a.Days)))
		days := len(b)
		for d, c := range a.Days {
			n, ok := dayNumber(d)
			if !ok {
				b = b[:days]
				break
			}
			b = binary.AppendVarint(b, n)
			b = binary.AppendUvarint(b, uint64(c))
		}
		if len(b) == days && len(a.Days) > 0 {
			// A key that is no day: every day as a string.
			b[at] |= aggDayStrings
			for d, c := range a.Days {
				b = appendString(b, d)
				b = binary.AppendUvarint(b, uint64(c))
			}
		}
		b = binary.AppendUvarint(b, uint64(len(a.Recent)))
		for i, ms := range a.Recent {
			if i == 0 {
				b = binary.AppendVarint(b, ms)
			} else {
				// Newest first, so small and not negative; in another
				// order it wraps, and decodes back all the same.
				b = binary.AppendUvarint(b, uint64(a.Recent[i-1]-ms))
			}
		}
		b = appendStrings(b, a.Seen)
		b = appendStrings(b, a.Skip)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func appendStrings(b []byte, ss []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(ss)))
	for _, s := range ss {
		b = appendString(b, s)
	}
	return b
}

var errAggregatesShort = errors.New("truncated or malformed binary aggregates")

// aggReader reads the binary form; its first error sticks.
type aggReader struct {
	b   []byte
	err error
}

func (r *aggReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *aggReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads a count of things of at least one byte each.
func (r *aggReader) count() int {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail()
		return 0
	}
	return int(n)
}

func (r *aggReader) byte() byte {
	if len(r.b) == 0 {
		r.fail()
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *aggReader) string() string {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail()
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *aggReader) strings() []string {
	n := r.count()
	if n == 0 {
		return nil
	}
	ss := make([]string, n)
	for i := range ss {
		ss[i] = r.string()
	}
	return ss
}

func (r *aggReader) fail() {
	if r.err == nil {
		r.err = errAggregatesShort
	}
	r.b = nil
}

// decodeAggregatesBinary decodes the binary form (data[0] is
// aggregatesBinary).
func decodeAggregatesBinary(data []byte) (map[string]*EventAggregate, error) {
	r := &aggReader{b: data[1:]}
	n := r.count()
	leaves := make(map[string]*EventAggregate, n)
	for range n {
		k := r.string()
		a := &EventAggregate{}
		flags := r.byte()
		a.Partial, a.Backfilled = flags&aggPartial != 0, flags&aggBackfilled != 0
		a.Dropped = r.varint()
		if days := r.count(); days > 0 {
			a.Days = make(map[string]int, days)
			for range days {
				var d string
				if flags&aggDayStrings != 0 {
					d = r.string()
				} else {
					d = dayString(r.varint())
				}
				a.Days[d] = int(r.uvarint())
			}
		}
		if recent := r.count(); recent > 0 {
			a.Recent = make([]int64, recent)
			for i := range a.Recent {
				if i == 0 {
					a.Recent[i] = r.varint()
				} else {
					a.Recent[i] = a.Recent[i-1] - int64(r.uvarint())
				}
			}
		}
		a.Seen = r.strings()
		a.Skip = r.strings()
		if r.err != nil {
			return nil, r.err
		}
		leaves[k] = a
	}
	if r.err == nil && len(r.b) > 0 {
		r.err = fmt.Errorf("%d bytes after the last leaf", len(r.b))
	}
	return leaves, r.err
}

// dayNumber returns the days from 1970-01-01 to d, a day as Days keys it
// ("2006-01-02", UTC, years 0000 to 9999), when d is a real day
// (dayString writes it back the same).
func dayNumber(d string) (int64, bool) {
	if len(d) != 10 || d[4] != '-' || d[7] != '-' {
		return 0, false
	}
	y, m, day := digits(d[0:4]), digits(d[5:7]), digits(d[8:10])
	if y < 0 || m < 1 || m > 12 || day < 1 || day > 31 {
		return 0, false
	}
	n := daysFromCivil(y, m, day)
	if yy, mm, dd := civilFromDays(n); yy != y || mm != m || dd != day {
		return 0, false // 2026-02-30 and the like
	}
	return n, true
}

// digits returns the decimal number s spells, or -1.
func digits(s string) int64 {
	n := int64(0)
	for i := range len(s) {
		c := s[i]
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int64(c-'0')
	}
	return n
}

// dayString returns day n after 1970-01-01 as Days keys it.
func dayString(n int64) string {
	y, m, d := civilFromDays(n)
	if y < 0 || y > 9999 {
		return time.Unix(n*86400, 0).UTC().Format(time.DateOnly)
	}
	b := [10]byte{byte('0' + y/1000), byte('0' + y/100%10), byte('0' + y/10%10), byte('0' + y%10), '-',
		byte('0' + m/10), byte('0' + m%10), '-', byte('0' + d/10), byte('0' + d%10)}
	return string(b[:])
}

// daysFromCivil and civilFromDays convert between days since 1970-01-01
// and proleptic Gregorian dates (Howard Hinnant's algorithms, as
// time.Date computes them, without its time zone work).
func daysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 {
		era = (y - 399) / 400
	}
	yoe := y - era*400
	mp := m + 9
	if m > 2 {
		mp = m - 3
	}
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

func civilFromDays(z int64) (y, m, d int64) {
	z += 719468
	era := z / 146097
	if z < 0 {
		era = (z - 146096) / 146097
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = doy - (153*mp+2)/5 + 1
	m = mp + 3
	if mp >= 10 {
		m = mp - 9
	}
	if m <= 2 {
		y++
	}
	return y, m, d
}
