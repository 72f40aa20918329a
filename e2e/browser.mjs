// browser.mjs drives headless Chromium (Debian's, never a downloaded build)
// through playwright-core: it opens the test page (e2e/browser/index.html,
// served from another origin than Cairn's) and runs its cairnVisit, which
// loads @segment/analytics-next from Cairn's settings and sends a page, a
// track and an identify from an anonymous visitor.
//
// Environment (set by cmd/server/clients_test.go):
//   CAIRN_CHROMIUM     the Chromium executable
//   CAIRN_PAGE_URL     the test page
//   CAIRN_URL          Cairn's base URL (cdnURL, and apiHost with /v1)
//   CAIRN_WRITE_KEY    the source's write key
//   CAIRN_USER_ID      the userId the visitor signs up as
//   CAIRN_USER_TRAITS  the identify's traits, a JSON object
//
// It prints one JSON report: the visitor's anonymousId, what the page sent
// to Cairn and what Cairn answered, and the page's console errors. It exits
// 1 (the report says why) unless the settings loaded and the three calls
// were each answered 2xx and delivered.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
}

// waitUntil polls cond (which reads what the page's events recorded) until
// it holds or ms pass.
async function waitUntil(cond, ms) {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  return cond();
}

function timeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} took over ${ms} ms`)), ms); }),
  ]);
}

const report = {
  anonymousId: null,
  failed: [],
  settings: [],
  tracking: [],
  console: [],
  pageErrors: [],
  requestFailures: [],
  problems: [],
};
const userDataDir = await mkdtemp(join(tmpdir(), 'cairn-chromium-'));
let context;
try {
  const cairn = new URL(need('CAIRN_URL'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: need('CAIRN_CHROMIUM'),
    headless: true,
    timeout: 30_000,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      // Only the loopback servers of the test exist for this browser: a
      // library reaching for its vendor's hosts fails here, visibly.
      '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost',
    ],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') report.console.push(`${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => report.pageErrors.push(String(e)));
  page.on('requestfailed', (r) => report.requestFailures.push(`${r.method()} ${r.url()}: ${r.failure()?.errorText}`));
  page.on('response', (res) => {
    const u = new URL(res.url());
    if (u.origin !== cairn.origin) return;
    const entry = { method: res.request().method(), path: u.pathname, status: res.status() };
    (u.pathname.endsWith('/settings') ? report.settings : report.tracking).push(entry);
  });

  await page.goto(need('CAIRN_PAGE_URL'), { waitUntil: 'load', timeout: 15_000 });
  const visit = page.evaluate((cfg) => window.cairnVisit(cfg), {
    writeKey: need('CAIRN_WRITE_KEY'),
    cdnURL: cairn.origin,
    apiHost: `${cairn.host}/v1`,
    protocol: cairn.protocol.replace(':', ''),
    userId: need('CAIRN_USER_ID'),
    traits: JSON.parse(process.env.CAIRN_USER_TRAITS || '{}'),
  });
  Object.assign(report, await timeout(visit, 20_000, 'the visit'));
  // The calls resolve once delivered; their answers reach this process
  // through the page's events, a moment later.
  await waitUntil(() => report.tracking.length >= 3, 5_000);
} catch (err) {
  report.problems.push(String(err?.stack ?? err));
} finally {
  await context?.close().catch((err) => report.problems.push(`closing the browser: ${err}`));
  await rm(userDataDir, { recursive: true, force: true });
}

if (!report.settings.some((s) => s.status === 200)) report.problems.push('the settings did not load from Cairn');
if (report.failed.length > 0) report.problems.push('analytics-next failed to deliver some events');
if (report.tracking.length < 3) report.problems.push(`Cairn answered ${report.tracking.length} tracking calls, want 3`);
for (const t of report.tracking) {
  if (t.status < 200 || t.status > 299) report.problems.push(`${t.method} ${t.path} answered ${t.status}`);
}
if (report.pageErrors.length > 0) report.problems.push('the page threw');
console.log(JSON.stringify(report, null, 2));
process.exit(report.problems.length > 0 ? 1 : 0);
