import { fmtTime, h, s, type Child } from '../dom';
import { api, must, type Schemas, type Tenant } from '../api';
import { badge, busy, fill, section, slot, table } from '../ui';
import { ingestionChart } from './ingestion';
import { fleetUsageViews } from './usage';

// barChart draws counts as horizontal bars: a picture with a text
// alternative, not a table.
function barChart(title: string, counts: Map<string, number>): HTMLElement {
  const entries = [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const max = Math.max(1, ...entries.map(([, n]) => n));
  const row = 28;
  const labelW = 140;
  const barW = 300;
  const height = Math.max(1, entries.length) * row + 8;
  const summary = entries.map(([k, n]) => `${k}: ${n}`).join(', ') || 'no tenants';
  const svg = s('svg', { viewBox: `0 0 ${labelW + barW + 60} ${height}`, width: labelW + barW + 60, height, role: 'img', 'aria-label': `${title}: ${summary}`, class: 'chart' },
    s('title', null, `${title}: ${summary}`),
    entries.map(([k, n], i) => {
      const y = i * row + 4;
      const w = Math.max(2, Math.round((n / max) * barW));
      return s('g', null,
        s('text', { x: labelW - 8, y: y + 17, 'text-anchor': 'end', class: 'chart-label' }, k),
        s('rect', { x: labelW, y, width: w, height: row - 8, rx: 3, class: `bar bar-${k}` }),
        s('text', { x: labelW + w + 6, y: y + 17, class: 'chart-value' }, String(n)));
    }));
  return h('figure', { class: 'chart-box' }, h('figcaption', null, title), svg);
}

function countBy(items: Tenant[], key: (t: Tenant) => string): Map<string, number> {
  const m = new Map<string, number>();
  for (const t of items) m.set(key(t), (m.get(key(t)) ?? 0) + 1);
  return m;
}

const KINDS: Record<Schemas['AttentionKind'], string> = { stack: 'Stack', pool_stack: 'Pool stack', grant: 'Grant' };

// attentionRow shows one failed stack or grant. Its tenant links to the
// tenant's page, where its stacks and grants are; a failed stack of a
// tenant that is not being offboarded can be retried here, as there.
function attentionRow(it: Schemas['AttentionItem'], retry: (tenant: string, region: Schemas['Region']) => void): HTMLElement {
  const tenant = it.tenant_id
    ? h('a', { href: `/tenants/${it.tenant_id}` }, it.tenant_name ?? it.tenant_id)
    : h('span', { class: 'muted' }, 'every pooled tenant of the Region');
  // A grant is known by its principal; a stack by its tenant and Region.
  const what = it.kind === 'grant' && it.principal ? [KINDS[it.kind], ' to ', h('code', null, it.principal)] : KINDS[it.kind];
  const live = it.tenant_status !== 'deprovisioning' && it.tenant_status !== 'deleted';
  const tenantID = it.tenant_id;
  const cells: Child[] = [
    what, tenant, it.region, badge(it.status), it.reason ?? '', fmtTime(it.updated_at),
    it.kind === 'stack' && tenantID && live
      ? h('button', { type: 'button', class: 'small', onClick: () => retry(tenantID, it.region) }, `Retry ${it.region}`)
      : null,
  ];
  return h('tr', null, cells.map((c) => h('td', null, c)));
}

// attentionView lists the fleet's failed stacks and grants (GET
// /v1/attention), oldest first, a page at a time, into el.
async function attentionView(el: HTMLElement): Promise<Child> {
  const reload = () => void fill(el, () => attentionView(el));
  // A refused retry is shown above the list, which stays.
  const outcome = h('div', null);
  const retry = (tenant: string, region: Schemas['Region']) => {
    outcome.replaceChildren(busy(`Retrying the stack in ${region}`));
    void fill(outcome, async () => {
      await must(api.POST('/v1/tenants/{tenant_id}/stacks/{region}/retry', { params: { path: { tenant_id: tenant, region } } }));
      reload();
      return null;
    });
  };
  const { data } = await must(api.GET('/v1/attention', { params: { query: { limit: 50 } } }));
  const caption = 'Failed stacks and grants, oldest first';
  const reloadButton = h('p', null, h('button', { type: 'button', class: 'small', onClick: reload }, 'Reload list'));
  if (data.items.length === 0) return [h('p', { class: 'muted', id: 'attention' }, `${caption}: none: every stack and grant is healthy.`), reloadButton];
  const body = h('tbody', null, data.items.map((it) => attentionRow(it, retry)));
  const more = h('p', null);
  const moreButton = (cursor: string) => h('button', { type: 'button', class: 'small', onClick: () => next(cursor) }, 'Show more');
  const next = async (cursor: string) => {
    more.replaceChildren(busy('Loading more'));
    await fill(more, async () => {
      const page = await must(api.GET('/v1/attention', { params: { query: { limit: 50, cursor } } }));
      body.append(...page.data.items.map((it) => attentionRow(it, retry)));
      return page.data.next_cursor ? moreButton(page.data.next_cursor) : null;
    });
  };
  if (data.next_cursor) more.append(moreButton(data.next_cursor));
  return [
    outcome,
    h('table', { id: 'attention' },
      h('caption', null, caption),
      h('thead', null, h('tr', null, ['What', 'Tenant', 'Region', 'Status', 'Reason', 'Since'].map((c) => h('th', { scope: 'col' }, c)),
        h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')))),
      body),
    more,
    reloadButton,
  ];
}

// At most this many tenants are read for the charts.
const MAX_PAGES = 25;

export async function fleetPage() {
  const all: Tenant[] = [];
  let cursor: string | undefined;
  let truncated = false;
  for (let i = 0; ; i++) {
    if (i === MAX_PAGES) {
      truncated = true;
      break;
    }
    const { data } = await must(api.GET('/v1/tenants', { params: { query: { limit: 200, cursor } } }));
    all.push(...data.items);
    if (!data.next_cursor) break;
    cursor = data.next_cursor;
  }
  const { data: pools } = await must(api.GET('/v1/pools'));
  const live = all.filter((t) => t.status !== 'deleted');
  const [usage, profiles] = await fleetUsageViews(new Map(all.map((t) => [t.id, t.slug])));
  const failed = all.filter((t) => t.status === 'failed');
  const attention = slot('Loading what needs attention');
  void fill(attention, () => attentionView(attention));
  return [
    h('h1', null, 'Fleet'),
    h('p', null, `${live.length} live tenants, ${all.length} counting deleted ones`, truncated ? `; the first ${all.length} are charted.` : '.'),
    section('Ingestion', h('div', { class: 'charts' }, ingestionChart(), usage)),
    section('Profiles', h('div', { class: 'charts' }, profiles)),
    section('Tenants', h('div', { class: 'charts' },
      barChart('Tenants by status', countBy(all, (t) => t.status)),
      barChart('Live tenants by tier', countBy(live, (t) => t.tier)),
      barChart('Live tenants by home Region', countBy(live, (t) => t.home_region)))),
    section('Needs attention', table('Failed tenants', ['Tenant', 'Reason', 'Updated'],
      failed.map((t) => [h('a', { href: `/tenants/${t.id}` }, t.name), t.status_reason ?? '', t.updated_at]), 'none: no tenant has failed.'), attention),
    section('Pool stacks', table('Pool stacks per Region', ['Region', 'Stack', 'Status', 'Tenants', 'Last error'],
      pools.items.map((p) => [p.region, h('code', null, p.stack_name), badge(p.status), String(p.tenant_count), p.last_error ?? '']), 'none yet: the first pooled tenant of a Region creates its pool.')),
  ];
}
