import { h } from '../dom';
import { api, must, session, toProblem } from '../api';
import { navigate } from '../router';
import { busy, problemBox } from '../ui';

let message = '';

/** setSignInMessage names why the user is back at sign-in. */
export function setSignInMessage(m: string): void {
  message = m;
}

export async function signInPage() {
  const note = message;
  message = '';
  const out = h('div', { id: 'signin-result' });
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
  return [heading, note ? h('p', { class: 'notice', role: 'status' }, note) : null, out, form];
}
