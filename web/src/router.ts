// A tiny history router: pages are functions of the path's parameters and
// the query, and a page that polls registers its stop with onLeave.
import type { Child } from './dom';

export type Page = (params: Record<string, string>, query: URLSearchParams) => Promise<Child> | Child;

const routes: { pattern: RegExp; keys: string[]; page: Page; title: string }[] = [];
let leaving: (() => void)[] = [];
let renderer: (page: Page, title: string, params: Record<string, string>, query: URLSearchParams) => void = () => {};

export function route(path: string, title: string, page: Page): void {
  const keys: string[] = [];
  const pattern = new RegExp(
    '^' + path.replace(/:([a-z_]+)/g, (_, k: string) => {
      keys.push(k);
      return '([^/]+)';
    }) + '/?$',
  );
  routes.push({ pattern, keys, page, title });
}

/** onLeave registers f to run when the user leaves the current page. */
export function onLeave(f: () => void): void {
  leaving.push(f);
}

export function setRenderer(r: typeof renderer): void {
  renderer = r;
}

export function navigate(url: string, replace = false): void {
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  render();
}

export function render(): void {
  for (const f of leaving) f();
  leaving = [];
  const path = location.pathname;
  for (const r of routes) {
    const m = r.pattern.exec(path);
    if (!m) continue;
    const params: Record<string, string> = {};
    r.keys.forEach((k, i) => (params[k] = decodeURIComponent(m[i + 1] ?? '')));
    renderer(r.page, r.title, params, new URLSearchParams(location.search));
    return;
  }
  renderer(() => null, 'Not found', {}, new URLSearchParams());
}

/** start makes same-origin links client-side and follows the history. */
export function start(): void {
  document.addEventListener('click', (e) => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    const a = (e.target as Element | null)?.closest?.('a');
    if (!a || a.target || a.hasAttribute('download')) return;
    const href = a.getAttribute('href');
    if (!href || !href.startsWith('/') || href.startsWith('//')) return;
    e.preventDefault();
    navigate(href);
  });
  window.addEventListener('popstate', render);
  render();
}
