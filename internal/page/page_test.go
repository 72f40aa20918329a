package page

import (
	"errors"
	"testing"
)

func TestCursorRoundTrip(t *testing.T) {
	for _, seq := range []int64{0, 1, 127, 128, 1 << 40} {
		got, err := Decode(Encode(seq))
		if err != nil || got != seq {
			t.Errorf("Decode(Encode(%d)) = %d, %v", seq, got, err)
		}
	}
	if got, err := Decode(""); err != nil || got != 0 {
		t.Errorf("Decode(\"\") = %d, %v", got, err)
	}
}

func TestDecodeRefusesForeignCursors(t *testing.T) {
	for _, c := range []string{"!!", "AA", "Ag", Encode(5) + "A", "bm90LWEtY3Vyc29y", Encode(-1)} {
		if _, err := Decode(c); !errors.Is(err, ErrBadCursor) {
			t.Errorf("Decode(%q) = %v; want ErrBadCursor", c, err)
		}
	}
}

func TestTrim(t *testing.T) {
	id := func(n int) int64 { return int64(n) }
	items, next := Trim([]int{1, 2, 3}, 2, id)
	if len(items) != 2 || next == nil {
		t.Fatalf("Trim of a full page = %v, %v", items, next)
	}
	if seq, _ := Decode(*next); seq != 2 {
		t.Fatalf("next cursor points after %d; want 2", seq)
	}
	if items, next := Trim([]int{1, 2}, 2, id); len(items) != 2 || next != nil {
		t.Fatalf("Trim of the last page = %v, %v; want no cursor", items, next)
	}
}

func TestTrimString(t *testing.T) {
	id := func(s string) string { return "K#" + s }
	items, next := TrimString([]string{"a", "b", "c"}, 2, id)
	if len(items) != 2 || next == nil {
		t.Fatalf("TrimString of a full page = %v, %v", items, next)
	}
	if pos, _ := DecodeString(*next); pos != "K#b" {
		t.Fatalf("next cursor points after %q; want K#b", pos)
	}
	if items, next := TrimString([]string{"a"}, 2, id); len(items) != 1 || next != nil {
		t.Fatalf("TrimString of the last page = %v, %v; want no cursor", items, next)
	}
}
