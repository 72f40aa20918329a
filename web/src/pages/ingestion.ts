// The fleet page's live ingestion chart. There is no usage API yet, so it
// samples the server's own counters: /metrics, Prometheus text, whose
// cairn_ingest_events_total{source_kind,outcome,reason} counts every event
// the ingestion routes received. Rates are the differences between
// samples; a counter that went down (the server restarted) starts again.
import { h, s } from '../dom';
import { onLeave } from '../router';

const OUTCOMES = ['accepted', 'duplicate', 'suppressed', 'rejected'] as const;
type Outcome = (typeof OUTCOMES)[number];
type Counts = Record<Outcome, number>;

/** SAMPLE_MS is how often /metrics is read while the page is open. */
export const SAMPLE_MS = 2000;
/** WINDOW_MS is how far back the chart reaches. */
const WINDOW_MS = 5 * 60 * 1000;

function zero(): Counts {
  return { accepted: 0, duplicate: 0, suppressed: 0, rejected: 0 };
}

/** parseIngest sums cairn_ingest_events_total by outcome. */
export function parseIngest(text: string): Counts {
  const out = zero();
  for (const line of text.split('\n')) {
    const m = /^cairn_ingest_events_total\{([^}]*)\}\s+(\S+)/.exec(line);
    if (!m) continue;
    const outcome = /(?:^|,)outcome="([^"]*)"/.exec(m[1]!)?.[1] as Outcome | undefined;
    const v = Number(m[2]);
    if (outcome && outcome in out && Number.isFinite(v)) out[outcome] += v;
  }
  return out;
}

type Sample = { at: number; rate: Counts };

const W = 560;
const H = 160;
const PAD = { left: 48, right: 8, top: 8, bottom: 22 };

// draw charts the samples from the page's opening (or WINDOW_MS ago, if
// longer), at least a minute wide, so a fresh page shows its first
// samples across the chart rather than squeezed at its right edge.
function draw(samples: Sample[], opened: number, now: number, label: string): SVGElement {
  const span = Math.min(WINDOW_MS, Math.max(60_000, now - opened));
  const max = Math.max(1, ...samples.flatMap((p) => OUTCOMES.map((o) => p.rate[o])));
  const x = (t: number) => PAD.left + ((t - (now - span)) / span) * (W - PAD.left - PAD.right);
  const y = (v: number) => H - PAD.bottom - (v / max) * (H - PAD.top - PAD.bottom);
  const fmt = (v: number) => (v >= 10 ? v.toFixed(0) : v.toFixed(1));
  return s('svg', { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img', 'aria-label': label, class: 'line-chart' },
    s('title', null, label),
    s('line', { x1: PAD.left, y1: H - PAD.bottom, x2: W - PAD.right, y2: H - PAD.bottom, class: 'chart-axis' }),
    s('line', { x1: PAD.left, y1: PAD.top, x2: PAD.left, y2: H - PAD.bottom, class: 'chart-axis' }),
    s('text', { x: PAD.left - 6, y: PAD.top + 10, 'text-anchor': 'end', class: 'chart-label' }, `${fmt(max)}/s`),
    s('text', { x: PAD.left - 6, y: H - PAD.bottom, 'text-anchor': 'end', class: 'chart-label' }, '0'),
    s('text', { x: PAD.left, y: H - 4, class: 'chart-label' }, span >= 120_000 ? `${Math.round(span / 60000)} min ago` : `${Math.round(span / 1000)} s ago`),
    s('text', { x: W - PAD.right, y: H - 4, 'text-anchor': 'end', class: 'chart-label' }, 'now'),
    OUTCOMES.map((o) => samples.length < 2 ? null : s('polyline', {
      class: `line line-${o}`,
      points: samples.map((p) => `${x(p.at).toFixed(1)},${y(p.rate[o]).toFixed(1)}`).join(' '),
    })),
    // The latest rates as dots, so the first sample shows too.
    OUTCOMES.map((o) => {
      const p = samples.at(-1);
      return p && p.rate[o] > 0 ? s('circle', { cx: x(p.at).toFixed(1), cy: y(p.rate[o]).toFixed(1), r: 3, class: `dot dot-${o}` }) : null;
    }));
}

/**
 * ingestionChart returns the chart's figure and starts sampling; the
 * sampling stops when the user leaves the page. The figure's data-total
 * is the events counted since the page opened (all outcomes), and its
 * summary says the same in words.
 */
export function ingestionChart(): HTMLElement {
  const picture = h('div', { class: 'line-box' });
  const summary = h('p', { id: 'ingest-summary', 'aria-live': 'polite' }, 'Reading the server’s counters…');
  const fig = h('figure', { class: 'chart-box', id: 'ingestion', 'data-total': '0' },
    h('figcaption', null, 'Events ingested per second'),
    picture,
    h('ul', { class: 'legend', 'aria-hidden': 'true' }, OUTCOMES.map((o) => h('li', null, h('span', { class: `swatch swatch-${o}` }), o))),
    summary);

  let last: { at: number; counts: Counts } | undefined;
  const since = zero();
  const samples: Sample[] = [];
  let stopped = false;
  const opened = Date.now();

  const sample = async () => {
    let counts: Counts;
    try {
      const res = await fetch('/metrics', { headers: { Accept: 'text/plain' }, cache: 'no-store' });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      counts = parseIngest(await res.text());
    } catch (err) {
      if (stopped) return;
      fig.setAttribute('data-readable', 'false');
      picture.replaceChildren();
      summary.textContent = `The server’s counters (/metrics) cannot be read (${err instanceof Error ? err.message : String(err)}), so there is no ingestion chart.`;
      return;
    }
    if (stopped) return;
    fig.setAttribute('data-readable', 'true');
    const now = Date.now();
    if (last) {
      const secs = Math.max(0.001, (now - last.at) / 1000);
      const rate = zero();
      for (const o of OUTCOMES) {
        const d = counts[o] >= last.counts[o] ? counts[o] - last.counts[o] : counts[o];
        since[o] += d;
        rate[o] = d / secs;
      }
      samples.push({ at: now, rate });
      while (samples.length > 0 && samples[0]!.at < now - WINDOW_MS) samples.shift();
    }
    last = { at: now, counts };
    const total = OUTCOMES.reduce((n, o) => n + since[o], 0);
    const latest = samples.at(-1)?.rate;
    const perSec = latest ? OUTCOMES.reduce((n, o) => n + latest[o], 0) : 0;
    const words = `Since this page opened: ${OUTCOMES.map((o) => `${since[o]} ${o}`).join(', ')}; ` +
      `now ${perSec.toFixed(1)} events per second (sampled every ${SAMPLE_MS / 1000} s, last ${WINDOW_MS / 60000} minutes charted).`;
    fig.setAttribute('data-total', String(total));
    summary.textContent = words;
    picture.replaceChildren(draw(samples, opened, now, `Events ingested per second. ${words}`));
  };

  void sample();
  const timer = setInterval(() => void sample(), SAMPLE_MS);
  onLeave(() => {
    stopped = true;
    clearInterval(timer);
  });
  return fig;
}
