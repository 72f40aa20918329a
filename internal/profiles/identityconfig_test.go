package profiles_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cairn-cdp/cairn/internal/profiles"
)

// probePattern is the blocked value of an abuse probe: 405 bytes that
// expand to about 90,000 instructions.
var probePattern = "/" + strings.Repeat(".{1,1000}", 45) + "/"

// withBlocked returns the default config with the blocked values of types.
func withBlocked(blocked map[string][]string) profiles.IdentityConfig {
	cfg := profiles.DefaultIdentityConfig()
	for i, r := range cfg.Identifiers {
		cfg.Identifiers[i].Blocked = blocked[r.Type]
	}
	return cfg
}

func repeat(n int, f func(i int) string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = f(i)
	}
	return out
}

func TestIdentityConfigBounds(t *testing.T) {
	// Six custom types of 100 blocked values each: 600 in all.
	many := profiles.DefaultIdentityConfig()
	for i := range 6 {
		many.Identifiers = append(many.Identifiers, profiles.IdentifierRule{Type: fmt.Sprint("crm_", i), Priority: 10, Limit: 1,
			Blocked: repeat(100, func(j int) string { return fmt.Sprint("v", j) })})
	}
	tests := []struct {
		name  string
		cfg   profiles.IdentityConfig
		field string // "" when the config is valid
	}{
		{"the abuse probe", withBlocked(map[string][]string{"email": repeat(100, func(int) string { return probePattern })}), "identifiers/1/blocked/0"},
		{"a nested repetition", withBlocked(map[string][]string{"email": {`/^ok$/`, `/((a{1,1000}){1,1000}){1,1000}/`}}), "identifiers/1/blocked/1"},
		{"one expression too large", withBlocked(map[string][]string{"phone": {`/[0-9]{1,300}/`}}), "identifiers/2/blocked/0"},
		{"too large together", withBlocked(map[string][]string{
			"email": repeat(3, func(int) string { return `/.{1,200}/` }),
			"phone": repeat(3, func(int) string { return `/.{1,200}/` }),
		}), "identifiers/2/blocked/1"},
		{"too many for a type", withBlocked(map[string][]string{"anonymous_id": repeat(101, func(j int) string { return fmt.Sprint("v", j) })}), "identifiers/4/blocked"},
		{"too many in all", many, "identifiers/10/blocked"},
		{"too long", withBlocked(map[string][]string{"email": {"x", strings.Repeat("x", profiles.MaxBlockedLen+1)}}), "identifiers/1/blocked/1"},
		{"empty", withBlocked(map[string][]string{"email": {""}}), "identifiers/1/blocked/0"},
		{"not an expression", withBlocked(map[string][]string{"email": {`/a(/`}}), "identifiers/1/blocked/0"},
		{"usual blocked values", withBlocked(map[string][]string{
			"email":        append(repeat(80, func(j int) string { return fmt.Sprintf("qa%d@example.com", j) }), `/@example\.test$/`, `/(?i)^(test|qa|demo)[-_.]?\d*@(example|mailinator)\.(com|net|org)$/`, `/^.{1,100}@x$/`),
			"phone":        {`/^\+1555\d{7}$/`, "+15550000000"},
			"anonymous_id": {"anonymous", "undefined", "null", `/^[0-]+$/`},
		}), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, sqliteStore(t))
			_, err := f.svc.SetIdentityConfig(context.Background(), f.tenant, tt.cfg)
			if tt.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ve *profiles.ValidationError
			if !errors.As(err, &ve) || ve.Field != tt.field {
				t.Fatalf("got %v, want a validation error of %s", err, tt.field)
			}
			if got, _ := f.svc.IdentityConfig(context.Background(), f.tenant); !slices.EqualFunc(got.Identifiers, profiles.DefaultIdentityConfig().Identifiers, func(a, b profiles.IdentifierRule) bool { return a.Type == b.Type && len(a.Blocked) == 0 }) {
				t.Fatalf("a refused config was stored: %+v", got)
			}
		})
	}
}

// TestIdentityConfigCompiledOncePerVersion: ingestion compiles a tenant's
// configuration once, not per batch, and again once it changes.
func TestIdentityConfigCompiledOncePerVersion(t *testing.T) {
	stores(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		f.send(f.ev(map[string]any{"userId": "u0"}))
		if n := profiles.ConfigCompiles(f.svc); n != 0 {
			t.Fatalf("%d compiles of the default config", n)
		}
		if _, err := f.svc.SetIdentityConfig(ctx, f.tenant, withBlocked(map[string][]string{"email": {`/@example\.test$/`}})); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			f.send(f.ev(map[string]any{"userId": fmt.Sprint("u", i+1), "email": fmt.Sprintf("qa%d@example.test", i)}))
		}
		if n := profiles.ConfigCompiles(f.svc); n != 1 {
			t.Fatalf("%d compiles for 3 batches of one config version", n)
		}
		notFound(f, "email", "qa0@example.test")
		if _, err := f.svc.SetIdentityConfig(ctx, f.tenant, withBlocked(map[string][]string{"email": {`/@example\.org$/`}})); err != nil {
			t.Fatal(err)
		}
		f.send(f.ev(map[string]any{"userId": "u9", "email": "qa9@example.test"}), f.ev(map[string]any{"userId": "u10", "email": "b@example.org"}))
		f.send(f.ev(map[string]any{"userId": "u11"}))
		if n := profiles.ConfigCompiles(f.svc); n != 2 {
			t.Fatalf("%d compiles after a change, want 2", n)
		}
		f.lookup("email", "qa9@example.test")
		notFound(f, "email", "b@example.org")
		// Concurrent batches share the compiled config.
		var wg sync.WaitGroup
		for i := range 8 {
			e := f.ev(map[string]any{"userId": fmt.Sprint("c", i), "email": fmt.Sprintf("c%d@example.org", i)})
			wg.Go(func() {
				if _, err := f.svc.Ingest(ctx, f.tenant, []profiles.Event{e}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if n := profiles.ConfigCompiles(f.svc); n != 2 {
			t.Fatalf("%d compiles after concurrent batches, want 2", n)
		}
		notFound(f, "email", "c7@example.org")
	})
}
