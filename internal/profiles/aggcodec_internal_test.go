package profiles

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// TestDayNumber holds the day conversions of the binary aggregates to the
// time package's, over years 0000 to 9999, and refuses what is no day.
func TestDayNumber(t *testing.T) {
	first := time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)
	last := time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
	dense := time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)
	for day := first; !day.After(last); {
		s, n := day.Format(time.DateOnly), day.Unix()/86400
		if got, ok := dayNumber(s); !ok || got != n {
			t.Fatalf("dayNumber(%q) = %d, %v, want %d", s, got, ok, n)
		}
		if got := dayString(n); got != s {
			t.Fatalf("dayString(%d) = %q, want %q", n, got, s)
		}
		if day.Before(dense) || day.Year() > 2200 {
			day = day.AddDate(0, 0, 13)
		} else {
			day = day.AddDate(0, 0, 1)
		}
	}
	for _, s := range []string{"2026-02-29", "2026-02-30", "2026-04-31", "2026-13-01", "2026-00-10", "2026-01-00",
		"+123-01-01", "2026-1-011", "2026/01/01", "2026-01-1a", "", "20260101", "2026-01-01T"} {
		if n, ok := dayNumber(s); ok {
			t.Errorf("dayNumber(%q) = %d, want no day", s, n)
		}
	}
	if n, ok := dayNumber("2024-02-29"); !ok || dayString(n) != "2024-02-29" {
		t.Errorf("a leap day: %d, %v", n, ok)
	}
	// Far from years 0 to 9999, as time formats them.
	for _, n := range []int64{-800_000, 3_000_000} {
		if got, want := dayString(n), time.Unix(n*86400, 0).UTC().Format(time.DateOnly); got != want {
			t.Errorf("dayString(%d) = %q, want %q", n, got, want)
		}
	}
}

// randomAggregates returns leaves as evaluations make them, and some no
// evaluation makes (odd day keys, empty leaves), for the codec's tests.
func randomAggregates(r *rand.Rand) map[string]*EventAggregate {
	leaves := map[string]*EventAggregate{}
	for i := range r.IntN(12) {
		a := &EventAggregate{Partial: r.IntN(3) == 0, Backfilled: r.IntN(2) == 0}
		if r.IntN(2) == 0 {
			a.Dropped = r.Int64N(2e12) - 1e11
		}
		day := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC).AddDate(0, 0, -r.IntN(4000))
		for range r.IntN(9) {
			if a.Days == nil {
				a.Days = map[string]int{}
			}
			a.Days[day.Format(time.DateOnly)] = 1 + r.IntN(1e6)
			day = day.AddDate(0, 0, -1-r.IntN(40))
		}
		if r.IntN(8) == 0 && a.Days != nil {
			a.Days["2026-02-30"] = 2 // no day: kept as a string
		}
		ms := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC).UnixMilli() - r.Int64N(1e12)
		for range r.IntN(RecentCap + 1) {
			a.Recent = append(a.Recent, ms)
			ms -= r.Int64N(3)*r.Int64N(1e9) + r.Int64N(2)
		}
		if r.IntN(10) == 0 { // out of order, as no evaluation leaves it
			r.Shuffle(len(a.Recent), func(i, j int) { a.Recent[i], a.Recent[j] = a.Recent[j], a.Recent[i] })
		}
		for range r.IntN(3) {
			a.Seen = append(a.Seen, fmt.Sprintf("E#%d#m-%d", r.Int64(), i))
		}
		for range r.IntN(3) {
			a.Skip = append(a.Skip, fmt.Sprintf("E#%d#é-%d", r.Int64(), i))
		}
		leaves[fmt.Sprintf("track:Event %d#%x", i, r.Uint64())] = a
	}
	return leaves
}

// TestAggregatesCodec: the binary form decodes to the aggregates encoded;
// the JSON form of before decodes as it did; a truncated or garbled item
// is an error, never a panic or a wrong answer taken for whole.
func TestAggregatesCodec(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 500 {
		leaves := randomAggregates(r)
		data := encodeAggregates(leaves)
		got, err := decodeAggregates(Item{PK: "p", Data: data})
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, leaves) {
			t.Fatalf("case %d: decoded\n%s\nwant\n%s", i, dump(got), dump(leaves))
		}
		js, err := json.Marshal(leaves)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := decodeAggregates(Item{PK: "p", Data: js}); err != nil || !reflect.DeepEqual(got, leaves) {
			t.Fatalf("case %d: the JSON form decoded to %s, %v", i, dump(got), err)
		}
		if jsonLen := len(js); i < 5 {
			t.Logf("case %d: %d leaves, %d bytes, %d as JSON", i, len(leaves), len(data), jsonLen)
		}
		for range 20 {
			n := 1 + r.IntN(len(data))
			if _, err := decodeAggregates(Item{PK: "p", Data: data[:n]}); err == nil && n < len(data) {
				t.Fatalf("case %d: the first %d of %d bytes decode", i, n, len(data))
			}
		}
		if len(data) > 1 {
			garbled := append([]byte(nil), data...)
			garbled[1+r.IntN(len(data)-1)] ^= byte(1 + r.IntN(255))
			_, _ = decodeAggregates(Item{PK: "p", Data: garbled}) // no panic
		}
	}
	if got, err := decodeAggregates(Item{PK: "p", Data: append(encodeAggregates(nil), 0)}); err == nil {
		t.Fatalf("trailing bytes decode: %v", got)
	}
}

func dump(leaves map[string]*EventAggregate) string {
	b, _ := json.MarshalIndent(leaves, "", " ")
	return string(b)
}
