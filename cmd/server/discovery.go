package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/cairn-cdp/cairn/internal/portal"
)

// discoveryPath is where an OIDC issuer publishes its metadata (OpenID
// Connect Discovery 1.0, section 4).
const discoveryPath = "/.well-known/openid-configuration"

// discoveryTimeout bounds the one metadata request at start.
const discoveryTimeout = 10 * time.Second

// oidcMetadata is the part of an issuer's discovery document Cairn uses.
type oidcMetadata struct {
	Issuer                string `json:"issuer"`
	JWKSURI               string `json:"jwks_uri"`
	AuthorizationEndpoint string `json:"authorization_endpoint"`
	TokenEndpoint         string `json:"token_endpoint"`
}

// needsDiscovery reports whether the OIDC settings leave an endpoint for
// the issuer's discovery document to fill: the JWKS URL, or, with a portal
// client, its authorization or token endpoint.
func (c *config) needsDiscovery() bool {
	if c.OIDCIssuer == "" {
		return false
	}
	return c.OIDCJWKSURL == "" || c.OIDCClientID != "" && (c.OIDCAuthURL == "" || c.OIDCTokenURL == "")
}

// discoverOIDC fills the OIDC endpoints left unset from the issuer's
// discovery document; endpoints set explicitly are kept. The document must
// name the configured issuer exactly (section 4.3), and every endpoint it
// gives must be an absolute http(s) URL. Without anything to fill it makes
// no request.
func discoverOIDC(ctx context.Context, c *config, client *http.Client) error {
	if !c.needsDiscovery() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, discoveryTimeout)
	defer cancel()
	u := strings.TrimSuffix(c.OIDCIssuer, "/") + discoveryPath
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("oidc discovery: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	res, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("oidc discovery: %w (set oidc-jwks-url, and for the portal oidc-authorization-url and oidc-token-url, to start without it)", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("oidc discovery: GET %s answered %s", u, res.Status)
	}
	if mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type")); mt != "application/json" {
		return fmt.Errorf("oidc discovery: GET %s answered %q, not application/json", u, res.Header.Get("Content-Type"))
	}
	var m oidcMetadata
	if err := json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&m); err != nil {
		return fmt.Errorf("oidc discovery: %s: %w", u, err)
	}
	if m.Issuer != c.OIDCIssuer {
		return fmt.Errorf("oidc discovery: %s names issuer %q, not the configured %q", u, m.Issuer, c.OIDCIssuer)
	}
	type endpoint struct {
		dst  *string
		name string
		v    string
	}
	fills := []endpoint{{&c.OIDCJWKSURL, "jwks_uri", m.JWKSURI}}
	if c.OIDCClientID != "" {
		fills = append(fills,
			endpoint{&c.OIDCAuthURL, "authorization_endpoint", m.AuthorizationEndpoint},
			endpoint{&c.OIDCTokenURL, "token_endpoint", m.TokenEndpoint})
	}
	var errs []error
	for _, f := range fills {
		if *f.dst != "" {
			continue // set explicitly: kept
		}
		if _, err := portal.Origin(f.v); err != nil {
			errs = append(errs, fmt.Errorf("oidc discovery: %s: %s: %w", u, f.name, err))
			continue
		}
		*f.dst = f.v
	}
	return errors.Join(errs...)
}
