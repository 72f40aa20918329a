package ids_test

import (
	"crypto/sha256"
	"encoding/base32"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/ids"
)

var form = regexp.MustCompile(`^x_[a-z2-7]{26}$`)

// TestForm: every kind of ID is the prefix and 26 characters of [a-z2-7].
func TestForm(t *testing.T) {
	var b [16]byte
	for i := range b {
		b[i] = 0xff
	}
	for _, id := range []string{ids.New("x_"), ids.Encode("x_", b), ids.Encode("x_", [16]byte{}), ids.Derive("x_", "a", "b")} {
		if !form.MatchString(id) {
			t.Errorf("%q is not x_ and 26 characters of [a-z2-7]", id)
		}
	}
	if k := ids.Random(20); len(k) != 32 || strings.Trim(k, ids.Alphabet) != "" {
		t.Errorf("Random(20) = %q", k)
	}
	if ids.New("x_") == ids.New("x_") {
		t.Error("two random IDs are equal")
	}
}

// TestEncodeSorts: IDs whose bits start with a time sort by it as strings,
// which is why the alphabet is in ASCII order.
func TestEncodeSorts(t *testing.T) {
	var made []string
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 200 {
		var b [16]byte
		us := uint64(at.Add(time.Duration(i*i) * time.Millisecond).UnixMicro())
		for j := range 8 {
			b[j] = byte(us >> (8 * (7 - j)))
		}
		b[15] = byte(255 - i) // the random tail must not decide the order
		made = append(made, ids.Encode("seg_", b))
	}
	if !slices.IsSorted(made) {
		t.Fatal("time-first IDs do not sort by time")
	}
	// Segment IDs of earlier versions were base32hex over the same bits:
	// every new one sorts after every old one, so lists keep creation order.
	var b [16]byte
	us := uint64(time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro())
	for j := range 8 {
		b[j] = byte(us >> (8 * (7 - j)))
	}
	old := "seg_" + strings.ToLower(base32.HexEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
	if old >= made[0] {
		t.Fatalf("an old segment ID %s sorts after a new one %s", old, made[0])
	}
}

// TestDeriveIsStable: a derived ID is what earlier versions derived from
// the same parts, so an event or notice repeated across an upgrade keeps
// its ID.
func TestDeriveIsStable(t *testing.T) {
	parts := []string{"tenant.status_changed", "ten_abc", "active", "3"}
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	want := "evt_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:]))[:26]
	if got := ids.Derive("evt_", parts...); got != want {
		t.Fatalf("Derive = %s, want %s", got, want)
	}
	if ids.Derive("evt_", "a", "bc") == ids.Derive("evt_", "ab", "c") {
		t.Fatal("parts run together")
	}
}
