// Package portal serves the ISV admin portal's built single-page app in
// front of the REST API.
//
// API paths (/v1/..., /.well-known/..., /healthz, /readyz, /metrics) always
// reach the API, so its routes and its problem+json 404s stay as they are.
// Any other GET or HEAD is the portal's: a file of the build is served as
// it is (hashed assets are immutable), and an unknown path from a browser
// (one that accepts text/html) gets index.html, so client-side routes
// survive a reload. Everything else goes to the API, which answers a
// problem+json 404. Portal responses carry a strict Content-Security-Policy
// (no inline script or style) and the other security headers.
package portal

import (
	"bytes"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"
)

// CSP is the Content-Security-Policy of every portal response when the
// portal connects to its own origin only.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// Policy is CSP with connect-src also allowing the origins given (an OIDC
// token endpoint's, which the portal posts the authorization code to).
func Policy(connect ...string) string {
	if len(connect) == 0 {
		return CSP
	}
	return strings.Replace(CSP, "connect-src 'self'", "connect-src 'self' "+strings.Join(connect, " "), 1)
}

// Origin returns the scheme://host[:port] of an absolute http(s) URL, the
// form a CSP source takes.
func Origin(rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", err
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", fmt.Errorf("portal: %q is not an absolute http(s) URL", rawURL)
	}
	return u.Scheme + "://" + u.Host, nil
}

// apiPrefixes are the paths that belong to the API, never to the portal.
var apiPrefixes = []string{"/v1/", "/.well-known/"}

var apiPaths = []string{"/v1", "/healthz", "/readyz", "/metrics"}

// IsAPIPath reports whether p belongs to the API.
func IsAPIPath(p string) bool {
	for _, a := range apiPaths {
		if p == a {
			return true
		}
	}
	for _, a := range apiPrefixes {
		if strings.HasPrefix(p, a) {
			return true
		}
	}
	return false
}

// Handler returns api with the portal in front of it. site is the built
// app (index.html at its root); it is read once, here, and a missing
// index.html is an error. connect are origins, besides the portal's own,
// that the portal may fetch from (Policy).
func Handler(site fs.FS, api http.Handler, connect ...string) (http.Handler, error) {
	index, err := fs.ReadFile(site, "index.html")
	if err != nil {
		return nil, err
	}
	csp := Policy(connect...)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if (r.Method != http.MethodGet && r.Method != http.MethodHead) || IsAPIPath(r.URL.Path) {
			api.ServeHTTP(w, r)
			return
		}
		name := strings.TrimPrefix(path.Clean(r.URL.Path), "/")
		if name != "" && name != "index.html" {
			if b, err := fs.ReadFile(site, name); err == nil {
				secure(w.Header(), csp)
				if strings.HasPrefix(name, "assets/") {
					// Vite names assets by their content hash.
					w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
				} else {
					w.Header().Set("Cache-Control", "no-cache")
				}
				http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
				return
			}
		}
		if !acceptsHTML(r) {
			api.ServeHTTP(w, r)
			return
		}
		secure(w.Header(), csp)
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		http.ServeContent(w, r, "index.html", time.Time{}, bytes.NewReader(index))
	}), nil
}

func acceptsHTML(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

func secure(h http.Header, csp string) {
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
}
