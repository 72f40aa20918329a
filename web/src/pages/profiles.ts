import { h, fmtTime, type Child } from '../dom';
import { api, must, toProblem, type Schemas } from '../api';
import { navigate, onLeave } from '../router';
import { badge, busy, dl, fill, problemBox, section, slot, table } from '../ui';

const TYPES = ['user_id', 'email', 'phone', 'device_id', 'anonymous_id'];

export function lookupPage(params: Record<string, string>, q: URLSearchParams) {
  const id = params.tenant ?? '';
  const out = h('div', { 'aria-live': 'polite' });
  const type = h('select', { id: 'id-type', name: 'type' }, TYPES.map((t) => h('option', { value: t, selected: t === (q.get('type') ?? 'email') }, t)));
  const value = h('input', { id: 'id-value', name: 'value', required: true, value: q.get('value') ?? '' });
  const form = h('form', {
    class: 'card inline', role: 'search', 'aria-label': 'Look up a profile',
    onSubmit: async (e: Event) => {
      e.preventDefault();
      out.replaceChildren(busy('Looking up…'));
      try {
        const r = await must(api.GET('/v1/tenants/{tenant_id}/profiles', { params: { path: { tenant_id: id }, query: { identifier: `${type.value}:${value.value.trim()}` } } }));
        navigate(`/tenants/${id}/profiles/${r.data.id}`);
      } catch (err) {
        out.replaceChildren(problemBox(toProblem(err)));
      }
    },
  },
  h('div', { class: 'field' }, h('label', { for: 'id-type' }, 'Identifier type'), type),
  h('div', { class: 'field' }, h('label', { for: 'id-value' }, 'Value'), value),
  h('button', { type: 'submit' }, 'Look up'));
  return [
    h('p', { class: 'crumbs' }, h('a', { href: `/tenants/${id}` }, 'Tenant'), ' / Profiles'),
    h('h1', null, 'Profiles'),
    h('p', null, 'Find a unified profile by one of its identifiers.'),
    form, out,
  ];
}

export async function profilePage(params: Record<string, string>, q: URLSearchParams) {
  const tenant = params.tenant ?? '';
  const id = params.profile ?? '';
  const path = { path: { tenant_id: tenant, profile_id: id } };
  const { data: p } = await must(api.GET('/v1/tenants/{tenant_id}/profiles/{profile_id}', { params: path }));
  const out = h('div', { 'aria-live': 'polite' });

  const segNames = slot('Loading segments');
  void fill(segNames, async () => {
    if (p.segments.length === 0) return h('p', { class: 'muted' }, 'Member of no segment.');
    const all = await must(api.GET('/v1/tenants/{tenant_id}/segments', { params: { path: { tenant_id: tenant }, query: { limit: 200 } } }));
    const names = new Map(all.data.items.map((s) => [s.id, s.name]));
    return h('ul', null, p.segments.map((s) => h('li', null, names.get(s) ?? s)));
  });

  const merges = slot('Loading merge history');
  void fill(merges, async () => {
    const m = await must(api.GET('/v1/tenants/{tenant_id}/profiles/{profile_id}/merges', { params: path }));
    return table('Merges', ['When', 'Linked by', 'Members', ''], m.data.items.map((mg) => [
      fmtTime(mg.at), h('code', null, mg.identifier), mg.members.map((x) => h('code', { class: 'tag' }, x)),
      h('span', { class: 'actions' }, mg.members.filter((x) => x !== p.id).map((x) =>
        h('button', { type: 'button', class: 'small', onClick: () => unmerge(x) }, `Unmerge ${x}`))),
    ]), 'this profile was never merged.');
  });

  const unmerge = async (member: string) => {
    out.replaceChildren(busy('Unmerging…'));
    try {
      await must(api.POST('/v1/tenants/{tenant_id}/profiles/{profile_id}/unmerge', { params: path, body: { profile_id: member } }));
      out.replaceChildren(h('p', { class: 'notice', role: 'status' }, `Unmerged ${member}. `, h('a', { href: `/tenants/${tenant}/profiles/${member}` }, 'Open it'), '.'));
      void fill(merges, async () => h('p', { class: 'muted' }, 'Reload the page to see the history after the unmerge.'));
    } catch (err) {
      out.replaceChildren(problemBox(toProblem(err)));
    }
  };

  const timeline = slot('Loading events');
  // The timeline's filter (an event name) is kept in the URL, as lists' are.
  const eventName = q.get('event')?.trim() || undefined;
  const loadEvents = async (cursor?: string): Promise<Child> => {
    const ev = await must(api.GET('/v1/tenants/{tenant_id}/profiles/{profile_id}/events', { params: { ...path, query: { limit: 50, cursor, event: eventName } } }));
    const list = h('ol', { class: 'timeline' }, ev.data.items.map((e: Schemas['ProfileEvent']) =>
      h('li', null, h('time', { datetime: e.timestamp }, fmtTime(e.timestamp)), ' ', h('strong', null, e.type), e.name ? ` ${e.name}` : '',
        h('details', null, h('summary', null, 'Event'), h('pre', null, JSON.stringify(e.event, null, 2))))));
    const more = ev.data.next_cursor;
    return [ev.data.items.length ? list : h('p', { class: 'muted' }, eventName ? `No event named “${eventName}”.` : 'No events.'),
      more ? h('button', { type: 'button', onClick: () => fill(timeline, () => loadEvents(more)) }, 'Older events') : null];
  };
  void fill(timeline, () => loadEvents());
  const here = `/tenants/${tenant}/profiles/${id}`;
  const timelineFilter = h('form', {
    class: 'filters', role: 'search', 'aria-label': 'Filter the event timeline',
    onSubmit: (e: Event) => {
      e.preventDefault();
      const v = String(new FormData(e.target as HTMLFormElement).get('event') ?? '').trim();
      navigate(v ? `${here}?${new URLSearchParams({ event: v })}` : here);
    },
  },
  h('div', { class: 'field' }, h('label', { for: 'timeline-event' }, 'Event name'),
    h('input', { id: 'timeline-event', name: 'event', value: eventName ?? '', placeholder: 'a track event, or a page or screen name' })),
  h('div', { class: 'field actions' }, h('button', { type: 'submit' }, 'Filter'), eventName ? h('a', { href: here }, 'Clear') : null));

  const suppress = h('input', { id: 'erase-suppress', type: 'checkbox' });
  const confirmErase = h('input', { id: 'erase-confirm', autocomplete: 'off' });
  const eraseBtn = h('button', { type: 'submit', class: 'danger', disabled: true }, 'Erase profile');
  confirmErase.addEventListener('input', () => (eraseBtn.disabled = confirmErase.value !== 'erase'));
  const erase = h('form', {
    class: 'card danger-zone',
    onSubmit: async (e: Event) => {
      e.preventDefault();
      eraseBtn.disabled = true;
      try {
        const r = await must(api.DELETE('/v1/tenants/{tenant_id}/profiles/{profile_id}', { params: { ...path, query: { suppress: suppress.checked } } }));
        await followErasure(tenant, r.data, out);
      } catch (err) {
        out.replaceChildren(problemBox(toProblem(err)));
      }
    },
  },
  h('p', null, 'Erasure deletes the profile, its identifiers and events, and removes its lines from the raw zone.'),
  h('div', { class: 'check' }, suppress, h('label', { for: 'erase-suppress' }, 'Suppress future events with its identifiers')),
  h('div', { class: 'field' }, h('label', { for: 'erase-confirm' }, 'Type “erase” to confirm'), confirmErase),
  eraseBtn);

  return [
    h('p', { class: 'crumbs' }, h('a', { href: `/tenants/${tenant}` }, 'Tenant'), ' / ', h('a', { href: `/tenants/${tenant}/profiles` }, 'Profiles'), ' / ', id),
    h('h1', null, 'Profile ', h('code', null, p.id)),
    out,
    dl([['Created', fmtTime(p.created_at)], ['Updated', fmtTime(p.updated_at)], ['Merged profiles', p.merged_profile_ids.join(', ') || '—']]),
    section('Traits', Object.keys(p.traits).length
      ? dl(Object.entries(p.traits).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]))
      : h('p', { class: 'muted' }, 'No traits.')),
    section('Identifiers', table('Identifiers', ['Type', 'Value', 'First seen'], p.identifiers.map((i) => [i.type, h('code', null, i.value), fmtTime(i.first_seen)]))),
    section('Segments', segNames),
    section('Merge history', merges),
    section('Event timeline', timelineFilter, timeline),
    section('Erase', erase),
  ];
}

async function followErasure(tenant: string, first: Schemas['Erasure'], out: HTMLElement): Promise<void> {
  const show = (e: Schemas['Erasure']) => out.replaceChildren(h('div', { class: 'card', role: 'status', id: 'erasure' },
    h('p', null, 'Erasure ', badge(e.status)),
    e.status !== 'completed' ? h('progress', { 'aria-label': 'Erasure progress' }) : null,
    dl([['Items deleted', String(e.items_deleted)], ['Raw objects rewritten', String(e.objects_rewritten)], ['Raw lines removed', String(e.lines_removed)]]),
    e.status === 'completed' ? h('p', null, 'The profile is erased. ', h('a', { href: `/tenants/${tenant}/profiles` }, 'Look up another profile'), '.') : null));
  show(first);
  let e = first;
  let alive = true;
  onLeave(() => (alive = false));
  while (alive && e.status !== 'completed') {
    await new Promise((r) => setTimeout(r, 500));
    e = (await must(api.GET('/v1/tenants/{tenant_id}/erasures/{erasure_id}', { params: { path: { tenant_id: tenant, erasure_id: e.id } } }))).data;
    if (alive) show(e);
  }
}
