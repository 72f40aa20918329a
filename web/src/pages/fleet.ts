import { h, s } from '../dom';
import { api, must, type Tenant } from '../api';
import { badge, section, table } from '../ui';
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
      failed.map((t) => [h('a', { href: `/tenants/${t.id}` }, t.name), t.status_reason ?? '', t.updated_at]), 'none: no tenant has failed.')),
    section('Pool stacks', table('Pool stacks per Region', ['Region', 'Stack', 'Status', 'Tenants', 'Last error'],
      pools.items.map((p) => [p.region, h('code', null, p.stack_name), badge(p.status), String(p.tenant_count), p.last_error ?? '']), 'none yet: the first pooled tenant of a Region creates its pool.')),
  ];
}
