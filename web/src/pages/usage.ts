// Usage pictures, from the usage API (GET /v1/tenants/{id}/usage and
// GET /v1/usage): a tenant's events and requests per hour, and the
// fleet's busiest tenants per day. Counts land every few seconds (each
// replica flushes every 5 s), so the tenant chart reads them again while
// its page is open.
import { h, s } from '../dom';
import { api, must, type Schemas } from '../api';
import { onLeave } from '../router';

type Bucket = Schemas['UsageBucket'];

const W = 560;
const H = 160;
const PAD = { left: 48, right: 8, top: 8, bottom: 22 };
const HOUR = 3600_000;
const DAY = 24 * HOUR;

/** REFRESH_MS is how often the tenant's chart reads its usage again. */
const REFRESH_MS = 5000;

function iso(t: number): string {
  return new Date(t).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function hourLabel(start: string): string {
  return new Date(start).toISOString().slice(11, 16);
}

// columns draws one value per bucket as columns, a second as a line over
// them, on one scale, with the first and last bucket's labels.
function columns(buckets: Bucket[], label: string, label0: (b: Bucket) => string): SVGElement {
  const max = Math.max(1, ...buckets.flatMap((b) => [b.values.events_accepted, b.values.api_requests]));
  const inner = W - PAD.left - PAD.right;
  const step = inner / Math.max(1, buckets.length);
  const y = (v: number) => H - PAD.bottom - (v / max) * (H - PAD.top - PAD.bottom);
  return s('svg', { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img', 'aria-label': label, class: 'line-chart usage-chart' },
    s('title', null, label),
    s('line', { x1: PAD.left, y1: H - PAD.bottom, x2: W - PAD.right, y2: H - PAD.bottom, class: 'chart-axis' }),
    s('text', { x: PAD.left - 6, y: PAD.top + 10, 'text-anchor': 'end', class: 'chart-label' }, String(max)),
    s('text', { x: PAD.left - 6, y: H - PAD.bottom, 'text-anchor': 'end', class: 'chart-label' }, '0'),
    buckets.length ? s('text', { x: PAD.left, y: H - 4, class: 'chart-label' }, label0(buckets[0]!)) : null,
    buckets.length ? s('text', { x: W - PAD.right, y: H - 4, 'text-anchor': 'end', class: 'chart-label' }, label0(buckets.at(-1)!)) : null,
    buckets.map((b, i) => b.values.events_accepted > 0
      ? s('rect', { x: (PAD.left + i * step + 1).toFixed(1), y: y(b.values.events_accepted).toFixed(1), width: Math.max(1, step - 2).toFixed(1),
        height: (H - PAD.bottom - y(b.values.events_accepted)).toFixed(1), class: 'bar bar-events' })
      : null),
    buckets.length > 1 ? s('polyline', { class: 'line line-requests',
      points: buckets.map((b, i) => `${(PAD.left + (i + 0.5) * step).toFixed(1)},${y(b.values.api_requests).toFixed(1)}`).join(' ') }) : null);
}

/**
 * tenantUsageView is the tenant's last 48 hours, per hour: events accepted
 * (columns) and API requests (a line). The figure's data-total is the
 * events accepted in that window.
 */
export function tenantUsageView(id: string): HTMLElement {
  const picture = h('div', { class: 'line-box' });
  const summary = h('p', { id: 'tenant-usage-summary', 'aria-live': 'polite' }, 'Reading the tenant’s usage…');
  const fig = h('figure', { class: 'chart-box', id: 'tenant-usage', 'data-total': '0' },
    h('figcaption', null, 'Events accepted and API requests per hour, last 48 hours'),
    picture,
    h('ul', { class: 'legend', 'aria-hidden': 'true' },
      h('li', null, h('span', { class: 'swatch swatch-events' }), 'events accepted'),
      h('li', null, h('span', { class: 'swatch swatch-requests' }), 'API requests')),
    summary);
  let stopped = false;
  const load = async () => {
    const now = Date.now();
    try {
      const { data } = await must(api.GET('/v1/tenants/{tenant_id}/usage', { params: {
        path: { tenant_id: id }, query: { from: iso(now - 47 * HOUR), to: iso(now), granularity: 'hour' } } }));
      if (stopped) return;
      const sum = (k: keyof Schemas['UsageValues']) => data.buckets.reduce((n, b) => n + b.values[k], 0);
      const events = sum('events_accepted');
      const bySource = new Map<string, number>();
      for (const b of data.buckets) for (const [k, v] of Object.entries(b.events_by_source)) bySource.set(k, (bySource.get(k) ?? 0) + v);
      const sources = [...bySource.entries()].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${v} from ${k === 'api' ? 'tokens' : k}`).join(', ');
      const words = `Last 48 hours: ${events} events accepted${sources ? ` (${sources})` : ''}, ${sum('api_requests')} API requests, ` +
        `${sum('raw_bytes')} bytes written to the raw zone, ${sum('webhook_deliveries')} webhook deliveries.`;
      fig.setAttribute('data-total', String(events));
      summary.textContent = words;
      picture.replaceChildren(columns(data.buckets, `Per hour, UTC. ${words}`, (b) => hourLabel(b.start)));
    } catch (err) {
      if (!stopped) summary.textContent = `The tenant’s usage cannot be read: ${err instanceof Error ? err.message : String(err)}`;
    }
  };
  void load();
  const timer = setInterval(() => void load(), REFRESH_MS);
  onLeave(() => {
    stopped = true;
    clearInterval(timer);
  });
  return fig;
}

/** TOP is how many tenants the fleet chart draws. */
const TOP = 5;

/**
 * fleetUsageView charts the events accepted per day, over the last 7 days,
 * of the TOP busiest tenants (names from the tenants the page read). The
 * figure's data-total is the fleet's events accepted in those days.
 */
export async function fleetUsageView(names: Map<string, string>): Promise<HTMLElement> {
  const now = Date.now();
  const from = iso(Math.floor(now / DAY) * DAY - 6 * DAY);
  const to = iso(now);
  const totals: Schemas['TenantUsageTotal'][] = [];
  let cursor: string | undefined;
  for (let i = 0; i < 25; i++) {
    const { data } = await must(api.GET('/v1/usage', { params: { query: { from, to, limit: 200, cursor } } }));
    totals.push(...data.items);
    if (!data.next_cursor) break;
    cursor = data.next_cursor;
  }
  const fleetEvents = totals.reduce((n, t) => n + t.values.events_accepted, 0);
  const top = totals.filter((t) => t.values.events_accepted > 0)
    .sort((a, b) => b.values.events_accepted - a.values.events_accepted).slice(0, TOP);
  const series = await Promise.all(top.map(async (t) => {
    const { data } = await must(api.GET('/v1/tenants/{tenant_id}/usage', { params: {
      path: { tenant_id: t.tenant_id }, query: { from, to, granularity: 'day' } } }));
    return { id: t.tenant_id, name: names.get(t.tenant_id) ?? t.tenant_id, buckets: data.buckets };
  }));
  const days = series[0]?.buckets.map((b) => b.start) ?? [];
  const max = Math.max(1, ...series.flatMap((x) => x.buckets.map((b) => b.values.events_accepted)));
  const x = (i: number) => PAD.left + (days.length > 1 ? (i / (days.length - 1)) * (W - PAD.left - PAD.right) : 0);
  const y = (v: number) => H - PAD.bottom - (v / max) * (H - PAD.top - PAD.bottom);
  const words = top.length
    ? `Last 7 days: ${fleetEvents} events accepted across the fleet; busiest: ${series.map((x, i) => `${x.name} ${top[i]!.values.events_accepted}`).join(', ')}.`
    : 'No tenant has accepted events in the last 7 days.';
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img', 'aria-label': `Events accepted per day. ${words}`, class: 'line-chart' },
    s('title', null, `Events accepted per day. ${words}`),
    s('line', { x1: PAD.left, y1: H - PAD.bottom, x2: W - PAD.right, y2: H - PAD.bottom, class: 'chart-axis' }),
    s('line', { x1: PAD.left, y1: PAD.top, x2: PAD.left, y2: H - PAD.bottom, class: 'chart-axis' }),
    s('text', { x: PAD.left - 6, y: PAD.top + 10, 'text-anchor': 'end', class: 'chart-label' }, String(max)),
    s('text', { x: PAD.left - 6, y: H - PAD.bottom, 'text-anchor': 'end', class: 'chart-label' }, '0'),
    days.length ? s('text', { x: PAD.left, y: H - 4, class: 'chart-label' }, days[0]!.slice(0, 10)) : null,
    days.length ? s('text', { x: W - PAD.right, y: H - 4, 'text-anchor': 'end', class: 'chart-label' }, days.at(-1)!.slice(0, 10)) : null,
    series.map((t, k) => s('polyline', { class: `line line-s${k}`,
      points: t.buckets.map((b, i) => `${x(i).toFixed(1)},${y(b.values.events_accepted).toFixed(1)}`).join(' ') })),
    series.map((t, k) => t.buckets.map((b, i) => b.values.events_accepted > 0
      ? s('circle', { cx: x(i).toFixed(1), cy: y(b.values.events_accepted).toFixed(1), r: 3, class: `dot dot-s${k}` }) : null)));
  return h('figure', { class: 'chart-box', id: 'fleet-usage', 'data-total': String(fleetEvents) },
    h('figcaption', null, `Events accepted per day, the ${TOP} busiest tenants`),
    svg,
    h('ul', { class: 'legend', 'aria-hidden': 'true' }, series.map((t, k) => h('li', null, h('span', { class: `swatch swatch-s${k}` }), t.name))),
    h('p', { id: 'fleet-usage-summary' }, words));
}
