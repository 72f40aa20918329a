package httpapi

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/cairn-cdp/cairn/internal/auth"
	"github.com/cairn-cdp/cairn/internal/idempotency"
)

// signInPrincipal is the idempotency-store namespace of used sign-in codes;
// no token's subject can take it.
const signInPrincipal = "sign-in-code"

// SignInTokenTTL is the lifetime of the admin token a sign-in code buys: a
// working session of the portal, not the 30 days an operator may mint.
const SignInTokenTTL = 8 * time.Hour

// SignIn exchanges a one-time sign-in code for an admin token. The code's
// use is claimed in the control-plane database (the idempotency store,
// which decides claims atomically across replicas and forgets them once
// the code has expired anyway), so a code works once.
func (s *Server) SignIn(ctx context.Context, req SignInRequestObject) (SignInResponseObject, error) {
	refused := newProblem(http.StatusUnauthorized, "unauthenticated", "Unauthenticated",
		"The sign-in code is wrong, expired or already used; ask for a new sign-in link.")
	refused.header = http.Header{"Www-Authenticate": {`Bearer realm="cairn", error="invalid_grant"`}}
	id, exp, err := s.auth.VerifySignIn(req.Body.Code)
	if err != nil {
		if errors.Is(err, auth.ErrUnauthenticated) {
			return nil, refused
		}
		return nil, err
	}
	now := s.now()
	_, claimed, err := s.signIns.IdempotencyClaim(ctx, idempotency.Record{
		Principal: signInPrincipal, Key: id, RequestHash: "used", Completed: true,
		LockedUntil: exp, CreatedAt: now, ExpiresAt: exp,
	}, now)
	if err != nil {
		return nil, err
	}
	if !claimed {
		return nil, refused
	}
	token, tokenExp, err := s.auth.MintAdmin(SignInTokenTTL)
	if err != nil {
		return nil, err
	}
	// The admin token minted is recorded, as every token minted through
	// the API is; the request has no token of its own, so the actor is
	// the sign-in link.
	rec := auditOf(ctx, "", "token.mint", "admin", "admin").With("sign_in_id", id).With("expires_at", tokenExp.UTC().Format(time.RFC3339))
	rec.Actor = "sign-in"
	if err := s.record(ctx, rec); err != nil {
		return nil, err
	}
	return SignIn200JSONResponse{Token: token, TokenType: SignInTokenTokenTypeBearer, ExpiresAt: tokenExp.UTC()}, nil
}
