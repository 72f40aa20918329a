package auth

import "errors"

// Sentinel errors.
var (
	// ErrUnauthenticated is matched by every error Verify returns. The error
	// is a *TokenError; use errors.As to read its client-safe Reason.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrInvalidScope is returned by MintTenant when the scopes are empty,
	// unknown, or include ScopeAdmin.
	ErrInvalidScope = errors.New("invalid scope")
	// ErrInvalidTTL is returned by MintAdmin and MintTenant when the lifetime
	// is negative or above the configured maximum (Config.MaxAdminLifetime,
	// Config.MaxTenantLifetime).
	ErrInvalidTTL = errors.New("invalid token lifetime")
)

// TokenError is the error Verify returns. It matches ErrUnauthenticated with
// errors.Is.
type TokenError struct {
	// Reason says why the token was refused, for example "token expired" or
	// "unknown key id". It is fixed text, never a part of the token, so it is
	// safe to show a client.
	Reason string
}

func (e *TokenError) Error() string { return "unauthenticated: " + e.Reason }

// Is makes errors.Is(err, ErrUnauthenticated) true.
func (e *TokenError) Is(target error) bool { return target == ErrUnauthenticated }

func unauthenticated(reason string) error { return &TokenError{Reason: reason} }
