import { h } from '../dom';
import { api, must, session, toProblem, type Problem } from '../api';
import { navigate } from '../router';
import { busy, problemBox } from '../ui';
import { beginSignIn, finishSignIn, issuerName, oidcConfig, SignInError, type OIDC } from '../oidc';

let message = '';
let failure: Problem | undefined;

/** setSignInMessage names why the user is back at sign-in. */
export function setSignInMessage(m: string): void {
  message = m;
}

function signInProblem(err: unknown): Problem {
  if (err instanceof SignInError) return { type: 'about:blank', title: 'Sign-in failed', status: 0, detail: err.message, request_id: '' };
  return toProblem(err);
}

// oidcButton offers sign-in at the configured issuer, if there is one; the
// page works without it when the offer cannot be read.
async function oidcButton(out: HTMLElement): Promise<HTMLElement | null> {
  let c: OIDC | undefined;
  try {
    c = await oidcConfig();
  } catch {
    return null;
  }
  if (!c) return null;
  const oidc = c;
  return h('div', { class: 'card' },
    h('button', {
      type: 'button',
      onClick: async () => {
        out.replaceChildren(busy(`Going to ${issuerName(oidc)}…`));
        try {
          await beginSignIn(oidc);
        } catch (err) {
          out.replaceChildren(problemBox(signInProblem(err)));
        }
      },
    }, `Sign in with ${issuerName(oidc)}`),
    h('p', { class: 'muted' }, 'Your organization\'s sign-in at ', h('code', null, oidc.issuer), '.'));
}

/** signInCallbackPage finishes a sign-in at the OIDC issuer. */
export async function signInCallbackPage(_: Record<string, string>, query: URLSearchParams) {
  history.replaceState(null, '', '/sign-in/callback'); // the code and state leave the URL
  try {
    const c = await oidcConfig();
    if (!c) throw new SignInError('Sign-in with an OIDC issuer is not configured on this server.');
    const { token, refresh } = await finishSignIn(c, query);
    // Check the token before keeping it, like a pasted one.
    await must(api.GET('/v1/tenants', { params: { query: { limit: 1 } }, headers: { Authorization: `Bearer ${token}` } }));
    session.set(token, refresh);
    navigate('/', true);
  } catch (err) {
    failure = signInProblem(err);
    navigate('/sign-in', true);
  }
  return [h('h1', null, 'Sign in to Cairn'), busy('Signing in…')];
}

export async function signInPage() {
  const note = message;
  message = '';
  const out = h('div', { id: 'signin-result' });
  if (failure) out.append(problemBox(failure));
  failure = undefined;
  const heading = h('h1', null, 'Sign in to Cairn');

  // A sign-in link carries a one-time code in its fragment.
  const code = new URLSearchParams(location.hash.slice(1)).get('code');
  if (code) {
    history.replaceState(null, '', '/sign-in');
    try {
      const { data } = await must(api.POST('/v1/sign-in', { body: { code } }));
      session.set(data.token);
      navigate('/', true);
      return [heading, busy('Signing in…')];
    } catch (err) {
      out.append(problemBox(toProblem(err)));
    }
  }

  const input = h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'off', required: true, 'aria-describedby': 'token-help' });
  const form = h(
    'form',
    {
      class: 'card',
      onSubmit: async (e: Event) => {
        e.preventDefault();
        const token = input.value.trim();
        if (!token) return;
        out.replaceChildren(busy('Checking the token…'));
        // Check the token before keeping it.
        try {
          await must(api.GET('/v1/tenants', { params: { query: { limit: 1 } }, headers: { Authorization: `Bearer ${token}` } }));
        } catch (err) {
          out.replaceChildren(problemBox(toProblem(err)));
          return;
        }
        session.set(token);
        navigate('/');
      },
    },
    h('label', { for: 'token' }, 'Admin token'),
    input,
    h('p', { id: 'token-help', class: 'muted' },
      'Paste an ISV admin token (', h('code', null, 'server token --admin'), ') or open a sign-in link (', h('code', null, 'server login-link'),
      '). The token is kept in this tab only.'),
    h('button', { type: 'submit' }, 'Sign in'),
  );
  return [heading, note ? h('p', { class: 'notice', role: 'status' }, note) : null, out, await oidcButton(out), form];
}
