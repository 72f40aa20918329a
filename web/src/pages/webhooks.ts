// Webhook endpoints, the tenant's (/tenants/:tenant/webhooks) and the
// fleet's (/webhooks): list, create (the secret shown once), and an
// endpoint's page with its deliveries, redelivery, recovery, a test event,
// secret rotation, enable and disable, and deletion.
import { h, fmtTime, type Child } from '../dom';
import { api, must, toProblem, type Schemas } from '../api';
import { navigate, onLeave, render } from '../router';
import { badge, busy, conflictNotice, dl, fill, problemBox, secretOnce, section, slot, table } from '../ui';
import { DELIVERY_STATUSES, FLEET_EVENT_KINDS, TENANT_EVENT_KINDS, isDeliveryStatus } from '../enums';

type Endpoint = Schemas['WebhookEndpoint'];
type WithSecret = Schemas['WebhookEndpointWithSecret'];
type Delivery = Schemas['WebhookDelivery'];
type EventType = Schemas['WebhookEventType'];
type Got<T> = Promise<{ data: T; response: Response }>;

/** Scope is the tenant's or the fleet's webhook routes, behind one interface. */
interface Scope {
  tenant?: string;
  base: string; // the portal's URL of the list
  kinds: readonly { kind: string; types: readonly EventType[] }[];
  list(cursor?: string): Got<Schemas['WebhookEndpointList']>;
  create(body: Schemas['WebhookEndpointCreate']): Got<WithSecret>;
  get(id: string): Got<Endpoint>;
  update(id: string, etag: string, body: Schemas['WebhookEndpointUpdate']): Got<Endpoint>;
  remove(id: string, etag: string): Got<unknown>;
  rotate(id: string): Got<WithSecret>;
  deliveries(id: string, cursor?: string, status?: Schemas['WebhookDeliveryStatus']): Got<Schemas['WebhookDeliveryList']>;
  redeliver(id: string, delivery: string): Got<Delivery>;
  recover(id: string, since: string): Got<Schemas['WebhookRecovered']>;
  test(id: string): Got<Delivery>;
}

function tenantScope(tenant: string): Scope {
  const p = (webhook_id: string) => ({ path: { tenant_id: tenant, webhook_id } });
  return {
    tenant,
    base: `/tenants/${tenant}/webhooks`,
    kinds: TENANT_EVENT_KINDS,
    list: (cursor) => must(api.GET('/v1/tenants/{tenant_id}/webhooks', { params: { path: { tenant_id: tenant }, query: { limit: 100, cursor } } })),
    create: (body) => must(api.POST('/v1/tenants/{tenant_id}/webhooks', { params: { path: { tenant_id: tenant } }, body })),
    get: (id) => must(api.GET('/v1/tenants/{tenant_id}/webhooks/{webhook_id}', { params: p(id) })),
    update: (id, etag, body) => must(api.PATCH('/v1/tenants/{tenant_id}/webhooks/{webhook_id}', { params: { ...p(id), header: { 'If-Match': etag } }, body })),
    remove: (id, etag) => must(api.DELETE('/v1/tenants/{tenant_id}/webhooks/{webhook_id}', { params: { ...p(id), header: { 'If-Match': etag } } })),
    rotate: (id) => must(api.POST('/v1/tenants/{tenant_id}/webhooks/{webhook_id}/rotate-secret', { params: p(id) })),
    deliveries: (id, cursor, status) => must(api.GET('/v1/tenants/{tenant_id}/webhooks/{webhook_id}/deliveries', { params: { ...p(id), query: { limit: 50, cursor, status } } })),
    redeliver: (id, delivery_id) => must(api.POST('/v1/tenants/{tenant_id}/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver', { params: { path: { tenant_id: tenant, webhook_id: id, delivery_id } } })),
    recover: (id, since) => must(api.POST('/v1/tenants/{tenant_id}/webhooks/{webhook_id}/recover', { params: p(id), body: { since } })),
    test: (id) => must(api.POST('/v1/tenants/{tenant_id}/webhooks/{webhook_id}/test', { params: p(id) })),
  };
}

const fleetScope: Scope = {
  base: '/webhooks',
  kinds: FLEET_EVENT_KINDS,
  list: (cursor) => must(api.GET('/v1/webhooks', { params: { query: { limit: 100, cursor } } })),
  create: (body) => must(api.POST('/v1/webhooks', { body })),
  get: (id) => must(api.GET('/v1/webhooks/{webhook_id}', { params: { path: { webhook_id: id } } })),
  update: (id, etag, body) => must(api.PATCH('/v1/webhooks/{webhook_id}', { params: { path: { webhook_id: id }, header: { 'If-Match': etag } }, body })),
  remove: (id, etag) => must(api.DELETE('/v1/webhooks/{webhook_id}', { params: { path: { webhook_id: id }, header: { 'If-Match': etag } } })),
  rotate: (id) => must(api.POST('/v1/webhooks/{webhook_id}/rotate-secret', { params: { path: { webhook_id: id } } })),
  deliveries: (id, cursor, status) => must(api.GET('/v1/webhooks/{webhook_id}/deliveries', { params: { path: { webhook_id: id }, query: { limit: 50, cursor, status } } })),
  redeliver: (id, delivery_id) => must(api.POST('/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver', { params: { path: { webhook_id: id, delivery_id } } })),
  recover: (id, since) => must(api.POST('/v1/webhooks/{webhook_id}/recover', { params: { path: { webhook_id: id } }, body: { since } })),
  test: (id) => must(api.POST('/v1/webhooks/{webhook_id}/test', { params: { path: { webhook_id: id } } })),
};

function endpointStatus(w: Endpoint): Child {
  if (w.enabled) {
    return [badge('enabled'), w.failing_since ? h('span', { class: 'muted' }, ` failing since ${fmtTime(w.failing_since)}`) : null];
  }
  return [badge('disabled'), ' ', w.disabled_reason ? h('span', null, w.disabled_reason) : h('span', { class: 'muted' }, 'paused by an operator')];
}

function crumbs(s: Scope, ...rest: Child[]): HTMLElement | null {
  if (!s.tenant && !rest.length) return null; // the fleet's list is a top page
  return h('p', { class: 'crumbs' },
    s.tenant ? [h('a', { href: `/tenants/${s.tenant}` }, 'Tenant'), ' / '] : null,
    rest.length ? [h('a', { href: s.base }, 'Webhooks'), ' / ', rest] : 'Webhooks');
}

const splitList = (text: string) => text.split(/[\s,]+/).map((t) => t.trim()).filter(Boolean);

/** endpointFields are the form controls an endpoint is made or changed with. */
async function endpointFields(s: Scope, prefix: string, w?: Endpoint) {
  const url = h('input', { id: `${prefix}-url`, name: 'url', type: 'url', required: true, value: w?.url ?? '', placeholder: 'https://hooks.example.com/cairn', autocomplete: 'off' });
  const description = h('input', { id: `${prefix}-desc`, name: 'description', value: w?.description ?? '', maxlength: 500 });
  const types = s.kinds.map((k, i) => h('fieldset', { class: 'checks' },
    h('legend', null, k.kind),
    k.types.map((t) => {
      const id = `${prefix}-type-${i}-${t.replace(/\W/g, '-')}`;
      return h('div', { class: 'check' }, h('input', { id, type: 'checkbox', name: 'event_types', value: t, checked: w ? w.event_types.includes(t) : false }), h('label', { for: id }, t));
    })));
  let segments: HTMLElement | null = null;
  let traits: HTMLTextAreaElement | null = null;
  const segmentNames = new Map<string, string>();
  if (s.tenant) {
    const r = await must(api.GET('/v1/tenants/{tenant_id}/segments', { params: { path: { tenant_id: s.tenant }, query: { limit: 200 } } }));
    for (const sg of r.data.items) segmentNames.set(sg.id, sg.name);
    segments = h('fieldset', { class: 'checks' },
      h('legend', null, 'Segment events only of these segments (none checked: every segment)'),
      r.data.items.length
        ? r.data.items.map((sg) => {
          const id = `${prefix}-seg-${sg.id}`;
          return h('div', { class: 'check' }, h('input', { id, type: 'checkbox', name: 'segment_ids', value: sg.id, checked: w?.segment_ids.includes(sg.id) ?? false }), h('label', { for: id }, sg.name));
        })
        : h('p', { class: 'muted' }, 'The tenant has no segment yet.'));
    traits = h('textarea', { id: `${prefix}-traits`, name: 'traits', rows: 2, 'aria-describedby': `${prefix}-traits-help` }, (w?.traits ?? []).join(', '));
  }
  const read = (form: HTMLFormElement) => {
    const fd = new FormData(form);
    return {
      url: url.value.trim(),
      description: description.value.trim(),
      event_types: fd.getAll('event_types').map(String) as EventType[],
      segment_ids: fd.getAll('segment_ids').map(String),
      traits: traits ? splitList(traits.value) : [],
    };
  };
  const controls: Child[] = [
    h('div', { class: 'field', 'data-field': 'url' }, h('label', { for: url.id }, 'Endpoint URL'), url),
    h('div', { class: 'field', 'data-field': 'description' }, h('label', { for: description.id }, 'Description'), description),
    h('div', { 'data-field': 'event_types' }, types),
    segments ? h('div', { 'data-field': 'segment_ids' }, segments) : null,
    traits ? h('div', { class: 'field', 'data-field': 'traits' },
      h('label', { for: traits.id }, 'Traits in payloads'), traits,
      h('p', { id: `${prefix}-traits-help`, class: 'muted' }, 'Profile traits each payload carries in data.traits, separated by commas.')) : null,
  ];
  return { controls, read, segmentNames };
}

/** placeErrors puts a problem's errors beside the fields they name, returning the rest. */
function placeErrors(form: HTMLFormElement, p: Schemas['Problem']): Schemas['FieldError'][] {
  form.querySelectorAll('.field-error').forEach((e) => e.remove());
  form.querySelectorAll('[aria-invalid]').forEach((e) => e.removeAttribute('aria-invalid'));
  const rest: Schemas['FieldError'][] = [];
  for (const e of p.errors ?? []) {
    const key = e.field.replace(/^\//, '').split('/')[0] ?? '';
    const box = form.querySelector<HTMLElement>(`[data-field="${CSS.escape(key)}"]`);
    if (!box) {
      rest.push(e);
      continue;
    }
    box.append(h('p', { class: 'field-error' }, h('code', null, e.field), ' ', e.message));
    box.querySelector('input, textarea')?.setAttribute('aria-invalid', 'true');
  }
  return rest;
}

// --- The list ------------------------------------------------------------------------

async function webhooksList(s: Scope, q: URLSearchParams) {
  const cursor = q.get('cursor') ?? undefined;
  const { data } = await s.list(cursor);
  const shown = h('div', { 'aria-live': 'polite' });
  const out = h('div', { 'aria-live': 'polite' });
  const { controls, read } = await endpointFields(s, 'wh-new');
  const submit = h('button', { type: 'submit' }, 'Create webhook');
  const form: HTMLFormElement = h('form', {
    class: 'card', novalidate: true,
    onSubmit: async (e: Event) => {
      e.preventDefault();
      const v = read(form);
      const body: Schemas['WebhookEndpointCreate'] = { url: v.url, event_types: v.event_types, enabled: true };
      if (v.description) body.description = v.description;
      if (v.segment_ids.length) body.segment_ids = v.segment_ids;
      if (v.traits.length) body.traits = v.traits;
      submit.disabled = true;
      out.replaceChildren(busy('Creating the webhook…'));
      try {
        const r = await s.create(body);
        form.reset();
        placeErrors(form, { type: '', title: '', status: 0, detail: '', request_id: '' });
        out.replaceChildren();
        const list = await listTable(s);
        rows.replaceChildren(list);
        shown.replaceChildren(secretOnce(`Signing secret of ${r.data.url}`, r.data.secret,
          'The secret was shown when this request was first answered and is not kept; rotate it for a new one.'),
        h('p', null, h('a', { href: `${s.base}/${r.data.id}` }, 'Open the new webhook')));
        shown.querySelector<HTMLElement>('button')?.focus();
      } catch (err) {
        const p = toProblem(err);
        out.replaceChildren(problemBox({ ...p, errors: placeErrors(form, p) }));
      } finally {
        submit.disabled = false;
      }
    },
  },
  controls,
  submit);
  const rows = h('div', null, listTable(s, data.items));
  return [
    h('h1', null, s.tenant ? 'Tenant webhooks' : 'Fleet webhooks'),
    h('p', { class: 'muted' }, s.tenant
      ? 'Endpoints that receive the tenant’s segment and profile events, signed as Standard Webhooks describes.'
      : 'Endpoints that receive fleet events (tenants, stacks, disabled webhooks), signed as Standard Webhooks describes.'),
    shown,
    rows,
    h('nav', { class: 'pager', 'aria-label': 'Pages' },
      cursor ? h('a', { href: s.base }, 'First page') : null,
      data.next_cursor ? h('a', { href: `${s.base}?cursor=${encodeURIComponent(data.next_cursor)}`, rel: 'next' }, 'Next page') : null),
    section('New webhook', form, out),
  ];
}

function listTable(s: Scope, items: Endpoint[]): HTMLElement;
function listTable(s: Scope): Promise<HTMLElement>;
function listTable(s: Scope, items?: Endpoint[]): HTMLElement | Promise<HTMLElement> {
  const draw = (list: Endpoint[]) => table('Webhook endpoints', ['Endpoint', 'Description', 'Event types', 'Status', 'Created'], list.map((w) => [
    h('a', { href: `${s.base}/${w.id}` }, w.url),
    w.description || '—',
    w.event_types.map((t) => h('span', { class: 'tag' }, t)),
    endpointStatus(w),
    fmtTime(w.created_at),
  ]), 'none yet.');
  if (items) return draw(items);
  return s.list().then((r) => draw(r.data.items));
}

export function fleetWebhooksPage(_: Record<string, string>, q: URLSearchParams) {
  return webhooksList(fleetScope, q).then((body) => [crumbs(fleetScope), body]);
}

export function tenantWebhooksPage(params: Record<string, string>, q: URLSearchParams) {
  const s = tenantScope(params.tenant ?? '');
  return webhooksList(s, q).then((body) => [crumbs(s), body]);
}

/** tenantWebhooksView is the tenant page's section: the endpoints, and where to manage them. */
export async function tenantWebhooksView(tenant: string): Promise<Child> {
  const s = tenantScope(tenant);
  const { data } = await s.list();
  return [listTable(s, data.items), h('p', null, h('a', { href: s.base }, 'Manage the tenant’s webhooks'))];
}

// --- An endpoint ------------------------------------------------------------------------

function deliveriesTable(s: Scope, w: Endpoint, items: Delivery[], redeliver: (d: Delivery) => void): HTMLElement {
  const first = (text: string | undefined) => {
    if (!text) return '—';
    return h('code', { class: 'response-body', title: text.length > 80 ? text : undefined }, text.length > 80 ? `${text.slice(0, 80)}…` : text);
  };
  return table(`Deliveries to ${w.url}`, ['Created', 'Event', 'Status', 'Attempts', 'Response', 'Response body', 'Next attempt', ''], items.map((d) => [
    h('time', { datetime: d.created_at }, fmtTime(d.created_at)),
    h('code', null, d.event_type),
    [badge(d.status), d.last_error ? h('span', { class: 'muted delivery-error' }, ` ${d.last_error}`) : null],
    String(d.attempts),
    d.response_status ? String(d.response_status) : '—',
    first(d.response_body),
    d.status === 'pending' && d.next_attempt_at ? h('time', { datetime: d.next_attempt_at }, fmtTime(d.next_attempt_at)) : '—',
    h('button', { type: 'button', class: 'small', onClick: () => redeliver(d), 'aria-label': `Redeliver ${d.event_type} of ${fmtTime(d.created_at)}` }, 'Redeliver'),
  ]), s.tenant ? 'none yet: deliveries appear as the tenant’s events go out.' : 'none yet: send a test to see one.');
}

async function webhookPage(s: Scope, id: string) {
  const first = await s.get(id);
  const w = first.data;
  let etag = first.response.headers.get('ETag') ?? '*';
  const out = h('div', { 'aria-live': 'polite', id: 'wh-out' });
  const reload = () => render();
  const failed = (err: unknown) => {
    const p = toProblem(err);
    out.replaceChildren(p.status === 412 ? conflictNotice('webhook', reload) : problemBox(p));
  };

  // Deliveries: newest first, a status filter, read again while any is pending.
  const deliveries = slot('Loading deliveries');
  const filter = h('select', { id: 'dlv-status', name: 'status' }, h('option', { value: '' }, 'any'), DELIVERY_STATUSES.map((st) => h('option', { value: st }, st)));
  let cursors: (string | undefined)[] = [undefined];
  let timer = 0;
  let alive = true;
  onLeave(() => {
    alive = false;
    window.clearTimeout(timer);
  });
  const load = async (): Promise<Child> => {
    window.clearTimeout(timer);
    const cursor = cursors[cursors.length - 1];
    const status = isDeliveryStatus(filter.value) ? filter.value : undefined;
    const r = await s.deliveries(id, cursor, status);
    if (alive && r.data.items.some((d) => d.status === 'pending')) {
      timer = window.setTimeout(() => void fill(deliveries, load), 1000);
    }
    const next = r.data.next_cursor;
    return [
      deliveriesTable(s, w, r.data.items, redeliver),
      h('div', { class: 'pager' },
        cursors.length > 1 ? h('button', { type: 'button', class: 'secondary', onClick: () => { cursors = [undefined]; void fill(deliveries, load); } }, 'Newest') : null,
        next ? h('button', { type: 'button', class: 'secondary', onClick: () => { cursors.push(next); void fill(deliveries, load); } }, 'Older deliveries') : null),
    ];
  };
  const refresh = () => {
    cursors = [undefined];
    return fill(deliveries, load);
  };
  filter.addEventListener('change', () => void refresh());
  const redeliver = async (d: Delivery) => {
    try {
      await s.redeliver(id, d.id);
      out.replaceChildren(h('p', { class: 'notice', role: 'status' }, `The ${d.event_type} delivery is pending again.`));
      await refresh();
    } catch (err) {
      failed(err);
    }
  };
  void refresh();

  const test = async () => {
    try {
      await s.test(id);
      out.replaceChildren(h('p', { class: 'notice', role: 'status' }, 'A webhook.test event is on its way; its delivery is below.'));
      await refresh();
    } catch (err) {
      failed(err);
    }
  };
  const rotate = async () => {
    if (!window.confirm('Rotate the signing secret? The old secret keeps signing for a day, beside the new one.')) return;
    try {
      const r = await s.rotate(id);
      etag = r.response.headers.get('ETag') ?? etag;
      out.replaceChildren(secretOnce('New signing secret', r.data.secret, 'The new secret could not be shown.'),
        h('p', null, 'The previous secret signs too until ', fmtTime(r.data.previous_secret_expires_at), '. ', h('button', { type: 'button', class: 'small secondary', onClick: reload }, 'Reload the endpoint')));
      out.querySelector<HTMLElement>('.secret button')?.focus();
    } catch (err) {
      failed(err);
    }
  };
  const toggle = async () => {
    try {
      await s.update(id, etag, { enabled: !w.enabled });
      render();
    } catch (err) {
      failed(err);
    }
  };
  const remove = async () => {
    if (!window.confirm(`Delete the webhook to ${w.url}? Its pending deliveries are cancelled.`)) return;
    try {
      await s.remove(id, etag);
      navigate(s.base);
    } catch (err) {
      failed(err);
    }
  };

  // Recovery: every delivery that failed since a time, sent again.
  const since = h('input', { id: 'recover-since', type: 'datetime-local', required: true, step: 1 });
  since.value = new Date(Date.now() - 24 * 3600 * 1000 - new Date().getTimezoneOffset() * 60000).toISOString().slice(0, 16);
  const recoverForm = h('form', {
    class: 'card inline',
    onSubmit: async (e: Event) => {
      e.preventDefault();
      const t = new Date(since.value);
      if (Number.isNaN(t.getTime())) {
        out.replaceChildren(problemBox({ type: 'about:blank', title: 'No time', status: 0, detail: 'Pick the time to recover from.', request_id: '' }));
        return;
      }
      try {
        const r = await s.recover(id, t.toISOString());
        const n = r.data.recovered;
        out.replaceChildren(h('p', { class: 'notice', role: 'status' }, `${n} failed ${n === 1 ? 'delivery is' : 'deliveries are'} pending again.`));
        await refresh();
      } catch (err) {
        failed(err);
      }
    },
  },
  h('div', { class: 'field' }, h('label', { for: 'recover-since' }, 'Failed since (your local time)'), since),
  h('button', { type: 'submit' }, 'Recover failed deliveries'));

  // Edit: the URL, description, types, segments and traits, with If-Match.
  const { controls, read, segmentNames } = await endpointFields(s, 'wh-edit', w);
  const editOut = h('div', { 'aria-live': 'polite' });
  const edit: HTMLFormElement = h('form', {
    class: 'card', novalidate: true,
    onSubmit: async (e: Event) => {
      e.preventDefault();
      const v = read(edit);
      const body: Schemas['WebhookEndpointUpdate'] = { url: v.url, description: v.description, event_types: v.event_types, traits: v.traits };
      if (s.tenant) body.segment_ids = v.segment_ids;
      try {
        await s.update(id, etag, body);
        render();
      } catch (err) {
        const p = toProblem(err);
        editOut.replaceChildren(p.status === 412 ? conflictNotice('webhook', reload) : problemBox({ ...p, errors: placeErrors(edit, p) }));
      }
    },
  }, controls, h('button', { type: 'submit' }, 'Save changes'), editOut);

  const head = h('span', { id: 'wh-state' }, badge(w.enabled ? 'enabled' : 'disabled'));
  return [
    crumbs(s, w.description || w.id),
    h('h1', null, 'Webhook ', head),
    out,
    dl([
      ['ID', h('code', null, w.id)],
      ['URL', h('code', null, w.url)],
      ['Description', w.description || '—'],
      ['Status', endpointStatus(w)],
      ['Event types', w.event_types.map((t) => h('span', { class: 'tag' }, t))],
      s.tenant ? ['Segments', w.segment_ids.length
        ? w.segment_ids.map((x) => segmentNames.has(x)
          ? h('a', { class: 'tag', href: `/tenants/${s.tenant}/segments/${x}` }, segmentNames.get(x))
          : h('code', { class: 'tag' }, x))
        : 'every segment'] : null,
      s.tenant ? ['Traits', w.traits.length ? w.traits.join(', ') : '—'] : null,
      ['Previous secret signs until', w.previous_secret_expires_at ? fmtTime(w.previous_secret_expires_at) : '—'],
      ['Created', fmtTime(w.created_at)],
      ['Updated', fmtTime(w.updated_at)],
    ].filter((x): x is [string, Child] => x !== null)),
    h('div', { class: 'actions' },
      h('button', { type: 'button', onClick: test, disabled: !w.enabled }, 'Send test'),
      h('button', { type: 'button', class: 'secondary', onClick: rotate }, 'Rotate secret'),
      h('button', { type: 'button', class: 'secondary', onClick: toggle }, w.enabled ? 'Disable' : 'Enable'),
      h('button', { type: 'button', class: 'danger', onClick: remove }, 'Delete webhook')),
    section('Deliveries',
      h('div', { class: 'actions' },
        h('div', { class: 'field' }, h('label', { for: 'dlv-status' }, 'Status'), filter),
        h('button', { type: 'button', class: 'secondary', onClick: () => void refresh() }, 'Refresh')),
      deliveries),
    section('Recover', h('p', { class: 'muted' }, 'Send again every delivery that failed since a time, with a fresh retry schedule.'), recoverForm),
    h('details', null, h('summary', null, 'Edit the webhook'), edit),
  ];
}

export function fleetWebhookPage(params: Record<string, string>) {
  return webhookPage(fleetScope, params.webhook ?? '');
}

export function tenantWebhookPage(params: Record<string, string>) {
  return webhookPage(tenantScope(params.tenant ?? ''), params.webhook ?? '');
}
