// Usage pictures, from the usage API (GET /v1/tenants/{id}/usage and
// GET /v1/usage): a tenant's events and requests per hour and the profiles
// it has, and the fleet's busiest and largest tenants per day. Counts land
// every few seconds (each replica flushes every 5 s, and samples a
// tenant's profiles within seconds of changing them), so the tenant charts
// read them again while the page is open. Profiles are a level, not a sum:
// a bucket's value is the latest sample (per day, the last hourly value).
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

function profilesWord(n: number): string {
  return n === 1 ? '1 profile' : `${n} profiles`;
}

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

type Line = { values: number[]; cls: string };

// lines draws series over the same buckets as lines on one scale from 0,
// with a dot at each non-zero value (so a single bucket shows), and the
// first and last bucket's labels.
function lines(series: Line[], first: string, last: string, label: string): SVGElement {
  const n = Math.max(0, ...series.map((l) => l.values.length));
  const max = Math.max(1, ...series.flatMap((l) => l.values));
  const x = (i: number) => PAD.left + (n > 1 ? (i / (n - 1)) * (W - PAD.left - PAD.right) : 0);
  const y = (v: number) => H - PAD.bottom - (v / max) * (H - PAD.top - PAD.bottom);
  return s('svg', { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img', 'aria-label': label, class: 'line-chart' },
    s('title', null, label),
    s('line', { x1: PAD.left, y1: H - PAD.bottom, x2: W - PAD.right, y2: H - PAD.bottom, class: 'chart-axis' }),
    s('line', { x1: PAD.left, y1: PAD.top, x2: PAD.left, y2: H - PAD.bottom, class: 'chart-axis' }),
    s('text', { x: PAD.left - 6, y: PAD.top + 10, 'text-anchor': 'end', class: 'chart-label' }, String(max)),
    s('text', { x: PAD.left - 6, y: H - PAD.bottom, 'text-anchor': 'end', class: 'chart-label' }, '0'),
    n ? s('text', { x: PAD.left, y: H - 4, class: 'chart-label' }, first) : null,
    n ? s('text', { x: W - PAD.right, y: H - 4, 'text-anchor': 'end', class: 'chart-label' }, last) : null,
    series.map((l) => l.values.length > 1 ? s('polyline', { class: `line line-${l.cls}`,
      points: l.values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ') }) : null),
    series.map((l) => l.values.map((v, i) => v > 0
      ? s('circle', { cx: x(i).toFixed(1), cy: y(v).toFixed(1), r: 3, class: `dot dot-${l.cls}` }) : null)));
}

/**
 * tenantUsageView is the tenant's last 48 hours, per hour, in two
 * figures from one reading: events accepted (columns) and API requests (a
 * line), whose data-total is the events accepted in that window; and the
 * profiles it has (a line), whose data-latest is the latest value.
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
  const profilesPicture = h('div', { class: 'line-box' });
  const profilesSummary = h('p', { id: 'tenant-profiles-summary', 'aria-live': 'polite' }, 'Reading the tenant’s profiles…');
  const profilesFig = h('figure', { class: 'chart-box', id: 'tenant-profiles', 'data-latest': '0' },
    h('figcaption', null, 'Profiles per hour, last 48 hours'),
    profilesPicture,
    h('ul', { class: 'legend', 'aria-hidden': 'true' },
      h('li', null, h('span', { class: 'swatch swatch-profiles' }), 'unified profiles')),
    profilesSummary);
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

      const profiles = data.buckets.map((b) => b.values.profiles);
      const latest = profiles.at(-1) ?? 0;
      const first = profiles.find((n) => n > 0);
      const profileWords = first === undefined
        ? 'No profiles in the last 48 hours.'
        : `Now ${profilesWord(latest)}; ${profiles[0]} 48 hours ago, ${Math.max(...profiles)} at most (the latest count in each hour, UTC).`;
      profilesFig.setAttribute('data-latest', String(latest));
      profilesSummary.textContent = profileWords;
      const ends = data.buckets.length ? [hourLabel(data.buckets[0]!.start), hourLabel(data.buckets.at(-1)!.start)] : ['', ''];
      profilesPicture.replaceChildren(lines([{ values: profiles, cls: 'profiles' }], ends[0]!, ends[1]!, `Profiles per hour. ${profileWords}`));
    } catch (err) {
      if (stopped) return;
      summary.textContent = `The tenant’s usage cannot be read: ${err instanceof Error ? err.message : String(err)}`;
      profilesSummary.textContent = summary.textContent;
    }
  };
  void load();
  const timer = setInterval(() => void load(), REFRESH_MS);
  onLeave(() => {
    stopped = true;
    clearInterval(timer);
  });
  return h('div', { class: 'charts' }, fig, profilesFig);
}

/** TOP is how many tenants each fleet chart draws. */
const TOP = 5;

type TenantSeries = { id: string; name: string; buckets: Bucket[] };

// top returns the TOP tenants with the largest non-zero value of k.
function top(totals: Schemas['TenantUsageTotal'][], k: keyof Schemas['UsageValues']): Schemas['TenantUsageTotal'][] {
  return totals.filter((t) => t.values[k] > 0).sort((a, b) => b.values[k] - a.values[k]).slice(0, TOP);
}

// dailyFigure is a fleet chart: one line per tenant of series, its value k
// per day.
function dailyFigure(id: string, caption: string, series: TenantSeries[], k: keyof Schemas['UsageValues'], words: string): HTMLElement {
  const days = series[0]?.buckets.map((b) => b.start) ?? [];
  const svg = lines(series.map((t, i) => ({ values: t.buckets.map((b) => b.values[k]), cls: `s${i}` })),
    days[0]?.slice(0, 10) ?? '', days.at(-1)?.slice(0, 10) ?? '', `${caption}. ${words}`);
  return h('figure', { class: 'chart-box', id },
    h('figcaption', null, caption),
    svg,
    h('ul', { class: 'legend', 'aria-hidden': 'true' }, series.map((t, i) => h('li', null, h('span', { class: `swatch swatch-s${i}` }), t.name))),
    h('p', { id: `${id}-summary` }, words));
}

/**
 * fleetUsageViews charts, over the last 7 days per day, the events
 * accepted of the TOP busiest tenants and the profiles of the TOP largest
 * ones (names from the tenants the page read). The first figure's
 * data-total is the fleet's events accepted in those days; the second's is
 * the profiles the fleet's tenants have now (the sum of each tenant's
 * latest count).
 */
export async function fleetUsageViews(names: Map<string, string>): Promise<[HTMLElement, HTMLElement]> {
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
  const busiest = top(totals, 'events_accepted');
  const largest = top(totals, 'profiles');
  // Each tenant's days are read once, for either chart or both.
  const ids = [...new Set([...busiest, ...largest].map((t) => t.tenant_id))];
  const read = new Map(await Promise.all(ids.map(async (id): Promise<[string, TenantSeries]> => {
    const { data } = await must(api.GET('/v1/tenants/{tenant_id}/usage', { params: {
      path: { tenant_id: id }, query: { from, to, granularity: 'day' } } }));
    return [id, { id, name: names.get(id) ?? id, buckets: data.buckets }];
  })));
  const named = (ts: Schemas['TenantUsageTotal'][]) => ts.map((t) => read.get(t.tenant_id)!);

  const fleetEvents = totals.reduce((n, t) => n + t.values.events_accepted, 0);
  const eventWords = busiest.length
    ? `Last 7 days: ${fleetEvents} events accepted across the fleet; busiest: ${busiest.map((t) => `${read.get(t.tenant_id)!.name} ${t.values.events_accepted}`).join(', ')}.`
    : 'No tenant has accepted events in the last 7 days.';
  const events = dailyFigure('fleet-usage', `Events accepted per day, the ${TOP} busiest tenants`, named(busiest), 'events_accepted', eventWords);
  events.setAttribute('data-total', String(fleetEvents));

  const fleetProfiles = totals.reduce((n, t) => n + t.values.profiles, 0);
  const profileWords = largest.length
    ? `Now ${profilesWord(fleetProfiles)} across the fleet; most: ${largest.map((t) => `${read.get(t.tenant_id)!.name} ${t.values.profiles}`).join(', ')} (each day's last count).`
    : 'No tenant has had profiles in the last 7 days.';
  const profiles = dailyFigure('fleet-profiles', `Profiles per day, the ${TOP} tenants with the most`, named(largest), 'profiles', profileWords);
  profiles.setAttribute('data-total', String(fleetProfiles));
  return [events, profiles];
}
