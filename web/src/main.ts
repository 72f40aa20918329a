import './style.css';
import { h } from './dom';
import { session, setRenewer, setUnauthorizedHandler, toProblem } from './api';
import { navigate, route, setRenderer, start } from './router';
import { problemBox } from './ui';
import { signInPage, signInCallbackPage, setSignInMessage } from './pages/signin';
import { callbackPath, renew } from './oidc';
import { tenantsPage, onboardPage, tenantPage } from './pages/tenants';
import { lookupPage, profilePage } from './pages/profiles';
import { newSegmentPage, segmentPage, segmentsPage } from './pages/segments';
import { fleetWebhookPage, fleetWebhooksPage, tenantWebhookPage, tenantWebhooksPage } from './pages/webhooks';
import { auditPage } from './pages/audit';
import { fleetPage } from './pages/fleet';

route('/sign-in', 'Sign in', signInPage);
route(callbackPath, 'Signing in', signInCallbackPage);
route('/', 'Tenants', tenantsPage);
route('/tenants', 'Tenants', tenantsPage);
route('/tenants/new', 'Onboard a tenant', onboardPage);
route('/tenants/:tenant', 'Tenant', tenantPage);
route('/tenants/:tenant/profiles', 'Profiles', lookupPage);
route('/tenants/:tenant/profiles/:profile', 'Profile', profilePage);
route('/tenants/:tenant/segments', 'Segments', segmentsPage);
route('/tenants/:tenant/segments/new', 'New segment', newSegmentPage);
route('/tenants/:tenant/segments/:segment', 'Segment', segmentPage);
route('/tenants/:tenant/webhooks', 'Tenant webhooks', tenantWebhooksPage);
route('/tenants/:tenant/webhooks/:webhook', 'Webhook', tenantWebhookPage);
route('/webhooks', 'Fleet webhooks', fleetWebhooksPage);
route('/webhooks/:webhook', 'Webhook', fleetWebhookPage);
route('/audit', 'Audit log', auditPage);
route('/fleet', 'Fleet', fleetPage);

setRenewer(renew);
setUnauthorizedHandler((message) => {
  setSignInMessage(message);
  navigate('/sign-in', true);
});

function nav(): HTMLElement {
  const here = location.pathname;
  const link = (href: string, text: string) =>
    h('a', { href, 'aria-current': (href === '/' ? here === '/' || here === '/tenants' : here.startsWith(href)) ? 'page' : undefined }, text);
  return h(
    'nav',
    { 'aria-label': 'Main' },
    h('a', { href: '/', class: 'brand' }, 'Cairn admin'),
    h('ul', null,
      h('li', null, link('/', 'Tenants')),
      h('li', null, link('/tenants/new', 'Onboard')),
      h('li', null, link('/fleet', 'Fleet')),
      h('li', null, link('/webhooks', 'Webhooks')),
      h('li', null, link('/audit', 'Audit log')),
    ),
    h('button', { type: 'button', class: 'link', onClick: () => { session.clear(); setSignInMessage('You signed out.'); navigate('/sign-in'); } }, 'Sign out'),
  );
}

let generation = 0;

setRenderer(async (page, title, params, query) => {
  const top = document.getElementById('top')!;
  const main = document.getElementById('main')!;
  const signIn = location.pathname === '/sign-in' || location.pathname === callbackPath;
  if (!signIn && !session.token()) {
    navigate('/sign-in', true);
    return;
  }
  top.replaceChildren(signIn ? h('span', { class: 'brand' }, 'Cairn admin') : nav());
  document.title = `${title} · Cairn admin`;
  const mine = ++generation;
  main.replaceChildren(h('p', { role: 'status' }, 'Loading…'));
  let content;
  try {
    content = title === 'Not found'
      ? [h('h1', { tabindex: '-1' }, 'Not found'), h('p', null, 'No page here. ', h('a', { href: '/' }, 'Go to the tenants.'))]
      : await page(params, query);
  } catch (err) {
    content = [h('h1', { tabindex: '-1' }, title), problemBox(toProblem(err))];
  }
  if (mine !== generation) return; // the user has moved on
  main.replaceChildren(h('div', null, content));
  const h1 = main.querySelector('h1');
  if (h1) {
    h1.setAttribute('tabindex', '-1');
    h1.focus({ preventScroll: true });
  }
});

// The skip link moves focus itself: a fragment link alone does not in
// every browser, and it must not reach the router.
document.querySelector('a.skip')?.addEventListener('click', (e) => {
  e.preventDefault();
  document.getElementById('main')?.focus();
});

start();
