// Sign-in at an external OIDC issuer: the authorization code flow with
// PKCE (S256) as a public client. The verifier, state and nonce wait in
// sessionStorage for the issuer to send the browser back to
// /sign-in/callback; the code is then exchanged at the token endpoint
// (whose origin the server's CSP allows in connect-src) and the token the
// server names is kept like a pasted one.
import { api, claimsOf, must, RenewalRefused, type Renewed, type Schemas } from './api';

export type OIDC = Schemas['PortalOIDC'];

const PENDING = 'cairn.oidc';

export const callbackPath = '/sign-in/callback';

let config: Promise<OIDC | undefined> | undefined;

/** oidcConfig is the server's OIDC sign-in offer, or undefined; read once. */
export function oidcConfig(): Promise<OIDC | undefined> {
  config ??= must(api.GET('/v1/portal/config')).then(({ data }) => data.oidc).catch((err) => {
    config = undefined; // ask again next time
    throw err;
  });
  return config;
}

/** issuerName is what "Sign in with" names: the issuer's host. */
export function issuerName(c: OIDC): string {
  try {
    return new URL(c.issuer).host || c.issuer;
  } catch {
    return c.issuer;
  }
}

function b64url(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function random(): string {
  return b64url(crypto.getRandomValues(new Uint8Array(32)));
}

async function challengeOf(verifier: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
  return b64url(new Uint8Array(digest));
}

function redirectURI(): string {
  return location.origin + callbackPath;
}

/** beginSignIn sends the browser to the issuer's authorization endpoint. */
export async function beginSignIn(c: OIDC): Promise<void> {
  if (!crypto.subtle) throw new Error('This browser offers no Web Crypto here (the portal needs https, or localhost).');
  const pending = { state: random(), nonce: random(), verifier: random() };
  sessionStorage.setItem(PENDING, JSON.stringify(pending));
  const u = new URL(c.authorization_endpoint);
  u.search = new URLSearchParams({
    response_type: 'code',
    client_id: c.client_id,
    redirect_uri: redirectURI(),
    scope: c.scopes.join(' '),
    state: pending.state,
    nonce: pending.nonce,
    code_challenge: await challengeOf(pending.verifier),
    code_challenge_method: 'S256',
  }).toString();
  location.assign(u.toString());
}

/** SignInError is a refused OIDC sign-in, with a message for the user. */
export class SignInError extends Error {}

/**
 * finishSignIn handles the issuer's redirect back (the query of
 * /sign-in/callback) and returns the bearer token to keep, with the
 * refresh token when the issuer gives one. It throws a
 * SignInError for an error answer, a state that is not the one sent, or a
 * refused code.
 */
export async function finishSignIn(c: OIDC, query: URLSearchParams): Promise<Renewed> {
  const raw = sessionStorage.getItem(PENDING);
  sessionStorage.removeItem(PENDING); // a state is good for one answer
  const error = query.get('error');
  if (error) {
    const why = query.get('error_description');
    throw new SignInError(`${issuerName(c)} refused the sign-in: ${error}${why ? ` (${why})` : ''}.`);
  }
  let pending: { state?: string; nonce?: string; verifier?: string } = {};
  try {
    pending = raw ? JSON.parse(raw) : {};
  } catch {
    // treated as no sign-in in progress
  }
  const state = query.get('state');
  if (!pending.state || !pending.verifier || !state || state !== pending.state) {
    throw new SignInError('The sign-in answer does not match a sign-in started in this tab (state mismatch). Sign in again.');
  }
  const code = query.get('code');
  if (!code) throw new SignInError('The sign-in answer carries no code. Sign in again.');
  let res: Response;
  try {
    res = await fetch(c.token_endpoint, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code,
        redirect_uri: redirectURI(),
        client_id: c.client_id,
        code_verifier: pending.verifier,
      }),
    });
  } catch (err) {
    throw new SignInError(`The token endpoint of ${issuerName(c)} cannot be reached: ${err instanceof Error ? err.message : String(err)}.`);
  }
  const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  if (!res.ok) {
    const why = typeof body.error_description === 'string' ? ` (${body.error_description})` : '';
    throw new SignInError(`The token endpoint of ${issuerName(c)} refused the code: ${String(body.error ?? `HTTP ${res.status}`)}${why}.`);
  }
  const idToken = typeof body.id_token === 'string' ? body.id_token : undefined;
  if (idToken && claimsOf(idToken).nonce !== pending.nonce) {
    throw new SignInError('The ID token is not for this sign-in (nonce mismatch). Sign in again.');
  }
  const token = body[c.token];
  if (typeof token !== 'string' || !token) throw new SignInError(`The token endpoint's answer has no ${c.token}.`);
  return { token, refresh: typeof body.refresh_token === 'string' && body.refresh_token ? body.refresh_token : undefined };
}

/**
 * renew exchanges a refresh token at the issuer's token endpoint (the
 * refresh_token grant of a public client) for a new token and, when the
 * issuer rotates them, a new refresh token. A refusal is a RenewalRefused.
 */
export async function renew(refresh: string): Promise<Renewed> {
  const c = await oidcConfig();
  if (!c) throw new RenewalRefused('sign-in with an OIDC issuer is no longer configured.');
  const res = await fetch(c.token_endpoint, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refresh, client_id: c.client_id }),
  });
  const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  if (!res.ok) {
    const why = typeof body.error_description === 'string' ? ` (${body.error_description})` : '';
    throw new RenewalRefused(`${issuerName(c)} refused: ${String(body.error ?? `HTTP ${res.status}`)}${why}.`);
  }
  const token = body[c.token];
  if (typeof token !== 'string' || !token) throw new RenewalRefused(`the answer of ${issuerName(c)} has no ${c.token}.`);
  return { token, refresh: typeof body.refresh_token === 'string' && body.refresh_token ? body.refresh_token : undefined };
}
