// Shared pieces of the pages: problems, badges, tables, progress.
import { h, type Child } from './dom';
import { toProblem, type Problem } from './api';

/** problemBox shows an API problem with its title and detail. */
export function problemBox(p: Problem, ...extra: Child[]): HTMLElement {
  return h(
    'div',
    { class: 'problem', role: 'alert' },
    h('p', { class: 'problem-title' }, h('strong', null, p.title), p.status ? ` (${p.status})` : ''),
    h('p', null, p.detail),
    p.errors && p.errors.length > 0 ? h('ul', null, p.errors.map((e) => h('li', null, h('code', null, e.field), ': ', e.message))) : null,
    p.request_id ? h('p', { class: 'muted' }, `Request ID ${p.request_id}`) : null,
    extra,
  );
}

const tones: Record<string, string> = {
  active: 'ok', ready: 'ok', completed: 'ok', enabled: 'ok', delivered: 'ok',
  computing: 'busy', provisioning: 'busy', creating: 'busy', pending: 'busy', replacing: 'busy', running: 'busy', deprovisioning: 'busy', deleting: 'busy', revoking: 'busy',
  suspended: 'warn', disabled: 'warn', failed: 'bad', revoked: 'muted', deleted: 'muted', cancelled: 'muted',
};

export function badge(status: string): HTMLElement {
  return h('span', { class: `badge badge-${tones[status] ?? 'muted'}` }, status);
}

export function table(caption: string, head: string[], rows: Child[][], empty = 'Nothing yet.'): HTMLElement {
  if (rows.length === 0) return h('p', { class: 'muted' }, `${caption}: ${empty}`);
  return h(
    'table',
    null,
    h('caption', null, caption),
    // A column of buttons has no title to show, but its header still names it.
    h('thead', null, h('tr', null, head.map((c) => h('th', { scope: 'col' }, c || h('span', { class: 'visually-hidden' }, 'Actions'))))),
    h('tbody', null, rows.map((r) => h('tr', null, r.map((c) => h('td', null, c))))),
  );
}

export function busy(label: string): HTMLElement {
  return h('p', { class: 'busy', role: 'status' }, h('progress', { 'aria-label': label }), ' ', label);
}

export function dl(pairs: [string, Child][]): HTMLElement {
  return h('dl', { class: 'facts' }, pairs.map(([k, v]) => [h('dt', null, k), h('dd', null, v)]));
}

/** section is a page section with a heading. */
export function section(title: string, ...children: Child[]): HTMLElement {
  const id = `s-${title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;
  return h('section', { 'aria-labelledby': id }, h('h2', { id }, title), children);
}

/** slot is a placeholder that a load fills later. */
export function slot(label: string): HTMLElement {
  return h('div', { class: 'slot' }, busy(label));
}

/** fill runs load and puts its result, or its problem, into el. */
export async function fill(el: HTMLElement, load: () => Promise<Child>): Promise<void> {
  try {
    const out = await load();
    el.replaceChildren();
    const box = h('div', null, out);
    el.append(...Array.from(box.childNodes));
  } catch (err) {
    el.replaceChildren(problemBox(toProblem(err)));
  }
}

/** conflictNotice is a 412's answer: the thing changed since the page read it. */
export function conflictNotice(what: string, reload: () => void): HTMLElement {
  return h('div', { class: 'problem', role: 'alert' },
    h('p', { class: 'problem-title' }, h('strong', null, `This ${what} changed since you opened it; reload`), ' (412)'),
    h('p', null, 'Someone else saved a change first. Reload to see it, then make your change again.'),
    h('button', { type: 'button', onClick: reload }, 'Reload'));
}

/** secretOnce shows a secret that the API returns once, with a copy button. */
export function secretOnce(label: string, secret: string | null, otherwise: string): HTMLElement {
  if (secret === null) {
    return h('div', { class: 'card secret', role: 'status' }, h('p', null, h('strong', null, label), ' ', otherwise));
  }
  const status = h('span', { role: 'status', class: 'muted' });
  return h('div', { class: 'card secret', role: 'region', 'aria-label': label },
    h('p', null, h('strong', null, label)),
    h('p', { class: 'warning' }, 'Shown once: copy it now. Cairn keeps no copy it can show again; if it is lost, rotate the secret.'),
    h('p', null, h('code', { class: 'secret-value' }, secret), ' ',
      h('button', { type: 'button', class: 'small', onClick: async () => {
        try {
          await navigator.clipboard.writeText(secret);
          status.textContent = 'Copied.';
        } catch {
          status.textContent = 'Copy failed; select the secret and copy it.';
        }
      } }, 'Copy secret'), ' ', status));
}
