package periodic_test

import (
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/periodic"
)

func TestGate(t *testing.T) {
	var g periodic.Gate
	at := time.Date(2026, 12, 6, 5, 0, 0, 0, time.UTC)
	const every = 25 * time.Millisecond
	if !g.Due(at, every) {
		t.Fatal("the first round is not due")
	}
	// Not started: the rounds after it wait, for up to ten intervals.
	for i := 1; i < 10; i++ {
		if g.Due(at.Add(time.Duration(i)*every), every) {
			t.Fatalf("round %d inserted while the first has not started", i)
		}
	}
	if !g.Due(at.Add(10*every), every) {
		t.Fatal("a round never seen to start holds the next back past ten intervals")
	}
	g.Started()
	if !g.Due(at.Add(11*every), every) {
		t.Fatal("the round after one that started is not due")
	}
	// From a second up, every round is due: uniqueness per period rules.
	var slow periodic.Gate
	for i := range 3 {
		if !slow.Due(at.Add(time.Duration(i)*time.Second), time.Second) {
			t.Fatalf("round %d of a one-second job held back", i)
		}
	}
}
