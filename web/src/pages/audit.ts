import { h, fmtTime } from '../dom';
import { api, must } from '../api';
import { navigate } from '../router';
import { table } from '../ui';

const FILTERS: [string, string, string][] = [
  ['tenant_id', 'Tenant ID', 'text'], ['actor', 'Actor', 'text'], ['action', 'Action', 'text'],
  ['from', 'From (UTC)', 'datetime-local'], ['to', 'To (UTC)', 'datetime-local'],
];

function toRFC3339(v: string | null): string | undefined {
  if (!v) return undefined;
  return /Z|[+-]\d\d:\d\d$/.test(v) ? v : `${v.length === 16 ? `${v}:00` : v}Z`;
}

export async function auditPage(_: Record<string, string>, q: URLSearchParams) {
  const { data } = await must(api.GET('/v1/audit-events', { params: { query: {
    limit: 100,
    cursor: q.get('cursor') ?? undefined,
    tenant_id: q.get('tenant_id') ?? undefined,
    actor: q.get('actor') ?? undefined,
    action: q.get('action') ?? undefined,
    from: toRFC3339(q.get('from')),
    to: toRFC3339(q.get('to')),
  } } }));
  const form = h('form', {
    class: 'filters', role: 'search', 'aria-label': 'Filter the audit log',
    onSubmit: (e: Event) => {
      e.preventDefault();
      const p = new URLSearchParams();
      for (const [k, v] of new FormData(e.target as HTMLFormElement)) if (typeof v === 'string' && v.trim()) p.set(k, v.trim());
      navigate(`/audit${p.size ? `?${p}` : ''}`);
    },
  },
  FILTERS.map(([name, label, type]) => h('div', { class: 'field' }, h('label', { for: `a-${name}` }, label),
    h('input', { id: `a-${name}`, name, type, value: q.get(name) ?? '' }))),
  h('div', { class: 'field actions' }, h('button', { type: 'submit' }, 'Filter'), h('a', { href: '/audit' }, 'Clear')));
  const next = new URLSearchParams(q);
  if (data.next_cursor) next.set('cursor', data.next_cursor);
  return [
    h('h1', null, 'Audit log'),
    form,
    table('Audit events, oldest first', ['Time', 'Tenant', 'Actor', 'Action', 'Target', 'Outcome', 'Request', 'Detail'], data.items.map((e) => [
      fmtTime(e.time), e.tenant_id ? h('a', { href: `/tenants/${e.tenant_id}` }, e.tenant_id) : '—', e.actor, h('code', null, e.action), `${e.target_type} ${e.target_id}`, e.outcome, h('code', null, e.request_id),
      Object.entries(e.detail).map(([k, v]) => h('span', { class: 'tag' }, `${k}=${v}`)),
    ]), 'no event matches.'),
    data.next_cursor ? h('nav', { class: 'pager', 'aria-label': 'Pages' }, h('a', { href: `/audit?${next}`, rel: 'next' }, 'Next page')) : null,
  ];
}
