package httpapi

import "context"

// OIDCClient is the admin portal's public client at an external OIDC
// issuer, for the authorization code flow with PKCE. Cairn holds no secret
// of it: the portal exchanges the code itself, and the server only trusts
// the issuer's tokens (auth.ExternalConfig).
type OIDCClient struct {
	// Issuer is the iss of the issuer's tokens.
	Issuer string
	// AuthorizationURL and TokenURL are the issuer's endpoints.
	AuthorizationURL, TokenURL string
	// ClientID names the portal at the issuer.
	ClientID string
	// Scopes are asked for at authorization.
	Scopes []string
	// UseIDToken makes the portal send the ID token as its bearer token
	// instead of the access token.
	UseIDToken bool
}

// GetPortalConfig tells the portal which sign-ins it offers. It needs no
// token: the portal reads it on its sign-in page.
func (s *Server) GetPortalConfig(context.Context, GetPortalConfigRequestObject) (GetPortalConfigResponseObject, error) {
	c := s.portalOIDC
	if c == nil {
		return GetPortalConfig200JSONResponse{}, nil
	}
	token := AccessToken
	if c.UseIDToken {
		token = IdToken
	}
	scopes := c.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	return GetPortalConfig200JSONResponse{Oidc: &PortalOIDC{
		Issuer: c.Issuer, AuthorizationEndpoint: c.AuthorizationURL, TokenEndpoint: c.TokenURL,
		ClientId: c.ClientID, Scopes: scopes, Token: token,
	}}, nil
}
