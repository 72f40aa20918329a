package webhooks

import (
	"testing"
	"time"
)

func constant(f float64) func() float64 { return func() float64 { return f } }

func TestNextAttemptSchedule(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	// With rnd at its midpoint there is no jitter.
	for attempts, want := range map[int]time.Duration{
		1: 5 * time.Second,
		2: 5 * time.Minute,
		3: 30 * time.Minute,
		4: 2 * time.Hour,
		5: 5 * time.Hour,
		6: 10 * time.Hour,
		7: 10 * time.Hour,
	} {
		at, ok := NextAttempt(attempts, now, 0, constant(0.5))
		if !ok || at.Sub(now) != want {
			t.Errorf("after %d attempts: %v, %v; want +%v", attempts, at.Sub(now), ok, want)
		}
	}
	for _, attempts := range []int{8, 9, 100} {
		if at, ok := NextAttempt(attempts, now, 0, constant(0.5)); ok || !at.IsZero() {
			t.Errorf("after %d attempts: %v, %v; want exhausted", attempts, at, ok)
		}
	}
	// Below the documented range: the first, immediate attempt.
	for _, attempts := range []int{0, -1} {
		if at, ok := NextAttempt(attempts, now, 0, constant(0.9)); !ok || !at.Equal(now) {
			t.Errorf("after %d attempts: %v, %v; want now", attempts, at, ok)
		}
	}
	// The whole schedule spans about 28 hours, as documented.
	var total time.Duration
	for _, d := range Schedule {
		total += d
	}
	if total < 27*time.Hour || total > 29*time.Hour {
		t.Errorf("Schedule spans %v", total)
	}
}

func TestNextAttemptJitter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for attempts := 1; attempts < len(Schedule); attempts++ {
		base := Schedule[attempts]
		low, _ := NextAttempt(attempts, now, 0, constant(0))
		high, _ := NextAttempt(attempts, now, 0, constant(0.999999))
		if got, want := low.Sub(now), base*8/10; got != want {
			t.Errorf("attempt %d, rnd 0: +%v, want +%v (-20%%)", attempts, got, want)
		}
		if got := high.Sub(now); got <= base || got > base*12/10 {
			t.Errorf("attempt %d, rnd ~1: +%v, want just under +%v (+20%%)", attempts, got, base*12/10)
		}
		// Out-of-range rnd values are clamped, never beyond ±20%.
		for _, f := range []float64{-3, 7} {
			at, _ := NextAttempt(attempts, now, 0, constant(f))
			if d := at.Sub(now); d < base*8/10 || d > base*12/10 {
				t.Errorf("attempt %d, rnd %v: +%v, outside ±20%%", attempts, f, d)
			}
		}
		// The default source stays in bounds too.
		for range 100 {
			at, ok := NextAttempt(attempts, now, 0, nil)
			if d := at.Sub(now); !ok || d < base*8/10 || d > base*12/10 {
				t.Fatalf("attempt %d, default rnd: +%v, outside ±20%%", attempts, d)
			}
		}
	}
}

func TestNextAttemptRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name       string
		attempts   int
		retryAfter time.Duration
		want       time.Duration
	}{
		{"later than the schedule", 1, time.Minute, time.Minute},
		{"sooner than the schedule", 3, time.Minute, 30 * time.Minute},
		{"equal", 2, 5 * time.Minute, 5 * time.Minute},
		{"capped at a day", 1, 72 * time.Hour, 24 * time.Hour},
		{"negative ignored", 1, -time.Hour, 5 * time.Second},
	} {
		at, ok := NextAttempt(tc.attempts, now, tc.retryAfter, constant(0.5))
		if !ok || at.Sub(now) != tc.want {
			t.Errorf("%s: +%v, %v; want +%v", tc.name, at.Sub(now), ok, tc.want)
		}
	}
	// Jitter never takes the attempt before Retry-After.
	at, _ := NextAttempt(1, now, 6*time.Second, constant(0))
	if at.Sub(now) != 6*time.Second {
		t.Errorf("jittered below Retry-After: +%v", at.Sub(now))
	}
	// Retry-After does not extend an exhausted schedule.
	if _, ok := NextAttempt(len(Schedule), now, time.Hour, constant(0.5)); ok {
		t.Error("Retry-After revived an exhausted schedule")
	}
}
