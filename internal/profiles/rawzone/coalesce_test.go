package rawzone_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/profiles"
	"github.com/cairn-cdp/cairn/internal/profiles/rawzone"
	"github.com/cairn-cdp/cairn/internal/profiles/rawzone/rawzonetest"
)

// The Coalescer is a raw zone like the one it wraps.
func TestCoalescerContract(t *testing.T) {
	rawzonetest.Run(t, localHarness(t.TempDir(), func(z *rawzone.Local) profiles.RawZone { return &rawzone.Coalescer{Zone: z} }))
}

// heldZone records appends; while held, an append waits for release.
type heldZone struct {
	profiles.RawZone
	mu      sync.Mutex
	appends []heldAppend
	entered chan struct{}
	release chan struct{}
}

type heldAppend struct {
	tenant string
	at     time.Time
	lines  []string
}

func (z *heldZone) Append(_ context.Context, tenant string, at time.Time, lines [][]byte) (string, error) {
	z.mu.Lock()
	n := len(z.appends)
	a := heldAppend{tenant: tenant, at: at}
	for _, l := range lines {
		a.lines = append(a.lines, string(l))
	}
	z.appends = append(z.appends, a)
	z.mu.Unlock()
	if n == 0 {
		close(z.entered)
		<-z.release
	}
	return fmt.Sprintf("object-%d", n), nil
}

// Appends of a tenant arriving while one is written go together in the
// next object; other tenants, other hours and overflowing appends do not.
func TestCoalescerMergesWaitingAppends(t *testing.T) {
	ctx := t.Context()
	zone := &heldZone{entered: make(chan struct{}), release: make(chan struct{})}
	c := &rawzone.Coalescer{Zone: zone, MaxLines: 12, MaxBytes: 40}
	at := time.Date(2026, 11, 26, 10, 30, 0, 0, time.UTC)

	first := make(chan string, 1)
	go func() {
		key, err := c.Append(ctx, "ten_a", at, [][]byte{[]byte("first")})
		if err != nil {
			t.Error(err)
		}
		first <- key
	}()
	<-zone.entered

	var wg sync.WaitGroup
	keys := make([]string, 5)
	for i := range keys {
		wg.Go(func() {
			// Two lines each: 10 of the 12 allowed.
			key, err := c.Append(ctx, "ten_a", at.Add(time.Duration(i)*time.Second), [][]byte{[]byte(fmt.Sprint("a", i)), []byte(fmt.Sprint("b", i))})
			if err != nil {
				t.Error(err)
			}
			keys[i] = key
		})
	}
	// Wait until the five are in the group, then send the ones that must
	// not join it.
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c.Waiting("ten_a") == 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d lines waiting, want 10", c.Waiting("ten_a"))
		}
		time.Sleep(time.Millisecond) // polling the group's size
	}
	alone := map[string]string{}
	for name, call := range map[string]func() (string, error){
		"other tenant": func() (string, error) { return c.Append(ctx, "ten_b", at, [][]byte{[]byte("b")}) },
		"next hour":    func() (string, error) { return c.Append(ctx, "ten_a", at.Add(time.Hour), [][]byte{[]byte("later")}) },
		"too many lines": func() (string, error) {
			return c.Append(ctx, "ten_a", at, [][]byte{[]byte("x1"), []byte("x2"), []byte("x3")})
		},
		"too many bytes": func() (string, error) { // 10 lines of 3 bytes are 30 of the 40
			return c.Append(ctx, "ten_a", at, [][]byte{[]byte("0123456789")})
		},
	} {
		key, err := call()
		if err != nil {
			t.Fatal(err)
		}
		alone[name] = key
	}
	close(zone.release)
	wg.Wait()
	if k := <-first; k != "object-0" {
		t.Fatalf("first append: %s", k)
	}

	// One object for the five, with every line, at the first one's hour.
	for _, k := range keys[1:] {
		if k != keys[0] {
			t.Fatalf("merged appends got different objects: %v", keys)
		}
	}
	var group *heldAppend
	for i := range zone.appends {
		if fmt.Sprintf("object-%d", i) == keys[0] {
			group = &zone.appends[i]
		}
	}
	if group == nil || group.tenant != "ten_a" || len(group.lines) != 10 || group.at.Truncate(time.Hour) != at.Truncate(time.Hour) {
		t.Fatalf("merged object %s: %+v (all appends %+v)", keys[0], group, zone.appends)
	}
	slices.Sort(group.lines)
	if want := []string{"a0", "a1", "a2", "a3", "a4", "b0", "b1", "b2", "b3", "b4"}; !slices.Equal(group.lines, want) {
		t.Fatalf("merged lines %v, want %v", group.lines, want)
	}
	if len(zone.appends) != 6 {
		t.Fatalf("%d objects written, want 6 (first, merged, other tenant, next hour, two overflows): %+v", len(zone.appends), zone.appends)
	}
	for name, key := range alone {
		if key == keys[0] || key == "object-0" {
			t.Errorf("%s append went into %s", name, key)
		}
	}
	if n := c.Waiting("ten_a"); n != 0 {
		t.Fatalf("%d lines still waiting", n)
	}
}
