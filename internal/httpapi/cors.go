package httpapi

import (
	"net/http"
	"strings"

	"github.com/cairn-cdp/cairn/internal/profiles"
)

// CORS for the routes browsers call (x-cairn-cors in the spec): the
// Segment-compatible ingestion routes and the browser settings. A browser
// write key is public, so a source accepts any origin unless it lists the
// origins it accepts. Credentials (cookies) are never allowed: the write
// key is the credential, sent in the body or the Authorization header.

// corsMaxAge is how long a browser may cache a preflight's answer, in
// seconds (Chromium caps it at two hours).
const corsMaxAge = "7200"

// corsAllowHeaders are the request headers tracking libraries send.
// AnonymousId is RudderStack's JavaScript SDK's.
const corsAllowHeaders = "Content-Type, Authorization, Content-Encoding, AnonymousId"

// preflight answers a CORS preflight (OPTIONS) for a route browsers may
// call, and reports whether it did; other OPTIONS requests are answered
// 405 (no route takes OPTIONS). The source is not known yet (a preflight carries no key), so
// any origin passes here and the request itself is checked.
func (g *gate) preflight(w http.ResponseWriter, r *http.Request) bool {
	var methods []string
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		if route := g.find(r, m); route != nil && route.Operation.Extensions[extCORS] == true {
			methods = append(methods, m)
		}
	}
	if len(methods) == 0 {
		return false
	}
	h := w.Header()
	allowOrigin(h, r.Header.Get("Origin"), nil)
	h.Add("Vary", "Access-Control-Request-Method")
	h.Add("Vary", "Access-Control-Request-Headers")
	h.Set("Allow", strings.Join(append(methods, http.MethodOptions), ", "))
	h.Set("Access-Control-Allow-Methods", strings.Join(methods, ", "))
	h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
	h.Set("Access-Control-Max-Age", corsMaxAge)
	w.WriteHeader(http.StatusNoContent)
	return true
}

// allowOrigin sets the CORS answer for a request from origin: "*" when
// allowed lists no origin, origin itself otherwise (checkOrigin has found
// it listed). Answers vary by Origin in any case, so caches keep them
// apart; call it once per response, then checkOrigin.
func allowOrigin(h http.Header, origin string, allowed []string) {
	h.Add("Vary", "Origin")
	setAllowOrigin(h, origin, allowed)
}

func setAllowOrigin(h http.Header, origin string, allowed []string) {
	if origin == "" {
		return
	}
	if len(allowed) == 0 {
		h.Set("Access-Control-Allow-Origin", "*")
	} else {
		h.Set("Access-Control-Allow-Origin", origin)
	}
	h.Set("Access-Control-Expose-Headers", "X-Request-Id")
}

// checkOrigin refuses (403) a browser request from an origin the source
// does not accept, and otherwise answers CORS for it. A request without
// an Origin (a server library) is not a browser's and passes.
func checkOrigin(h http.Header, origin string, src profiles.Source) *problem {
	if origin == "" {
		return nil
	}
	if !src.AllowsOrigin(origin) {
		h.Del("Access-Control-Allow-Origin")
		h.Del("Access-Control-Expose-Headers")
		return newProblem(http.StatusForbidden, "origin-not-allowed", "Origin not allowed",
			"The source does not accept events from the origin "+origin+".")
	}
	setAllowOrigin(h, origin, src.AllowedOrigins)
	return nil
}
