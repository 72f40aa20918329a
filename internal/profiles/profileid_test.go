package profiles_test

import (
	"regexp"
	"testing"

	"github.com/cairn-cdp/cairn/internal/profiles"
)

// TestNewProfileID checks that profile IDs match the API's pattern and
// that an ID made in a later millisecond sorts after.
func TestNewProfileID(t *testing.T) {
	pattern := regexp.MustCompile(`^prof_[a-z2-7]{26}$`) // api/openapi.yaml
	first := profiles.NewProfileID()
	seen := map[string]bool{}
	for {
		id := profiles.NewProfileID()
		if !pattern.MatchString(id) {
			t.Fatalf("%q does not match %s", id, pattern)
		}
		if seen[id] {
			t.Fatalf("%q made twice", id)
		}
		seen[id] = true
		// The first 9 characters after "prof_" encode 45 of the 48 bits of
		// time: they change every 8 ms.
		if id[:14] != first[:14] {
			if id < first {
				t.Fatalf("%q, made later, sorts before %q", id, first)
			}
			return
		}
	}
}
