import { h, uid, fmtTime, type Child } from '../dom';
import { api, ApiError, etagOf, must, toProblem, type Schemas, type Tenant } from '../api';
import { navigate, onLeave, render } from '../router';
import { badge, busy, dl, fill, problemBox, section, slot, table } from '../ui';
import { REGIONS, STATUSES, TIERS, isRegion, isStatus, isTier } from '../enums';
import { accessView, grantsView, principalsView } from './governance';
import { tenantWebhooksView } from './webhooks';
import { tenantUsageView } from './usage';

function select(id: string, name: string, options: readonly string[], value: string, any?: string): HTMLSelectElement {
  return h('select', { id, name },
    any !== undefined ? h('option', { value: '' }, any) : null,
    options.map((o) => h('option', { value: o, selected: o === value }, o)));
}

function field(label: string, control: HTMLElement, help?: string): HTMLElement {
  const id = control.id || uid('f');
  control.id = id;
  const helpId = help ? `${id}-help` : undefined;
  if (helpId) control.setAttribute('aria-describedby', helpId);
  return h('div', { class: 'field', 'data-field': control.getAttribute('name') ?? '' },
    h('label', { for: id }, label), control, help ? h('p', { id: helpId, class: 'muted' }, help) : null);
}

function parseLabels(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/[\n,]/)) {
    const t = line.trim();
    if (!t) continue;
    const i = t.indexOf('=');
    out[i < 0 ? t : t.slice(0, i).trim()] = i < 0 ? '' : t.slice(i + 1).trim();
  }
  return out;
}

// --- Tenants list -----------------------------------------------------------

export async function tenantsPage(_: Record<string, string>, q: URLSearchParams) {
  const status = q.get('status') ?? '';
  const tier = q.get('tier') ?? '';
  const region = q.get('region') ?? '';
  const label = q.get('label') ?? '';
  const search = q.get('q') ?? '';
  const cursor = q.get('cursor') ?? undefined;

  const { data } = await must(api.GET('/v1/tenants', { params: { query: {
    limit: 50,
    cursor,
    status: isStatus(status) ? status : undefined,
    tier: isTier(tier) ? tier : undefined,
    region: isRegion(region) ? region : undefined,
    q: search || undefined,
    label: label || undefined,
  } } }));
  const items = data.items;

  const form = h('form', {
    class: 'filters', role: 'search', 'aria-label': 'Filter tenants',
    onSubmit: (e: Event) => {
      e.preventDefault();
      const fd = new FormData(e.target as HTMLFormElement);
      const p = new URLSearchParams();
      for (const [k, v] of fd) if (typeof v === 'string' && v.trim()) p.set(k, v.trim());
      navigate(`/tenants${p.size ? `?${p}` : ''}`);
    },
  },
  field('Search', h('input', { name: 'q', type: 'search', value: search, placeholder: 'name, slug or ID' })),
  field('Status', select('f-status', 'status', STATUSES, status, 'any')),
  field('Tier', select('f-tier', 'tier', TIERS, tier, 'any')),
  field('Region', select('f-region', 'region', REGIONS, region, 'any')),
  field('Label', h('input', { name: 'label', value: label, placeholder: 'key or key=value' })),
  h('div', { class: 'field actions' }, h('button', { type: 'submit' }, 'Filter'), h('a', { href: '/tenants' }, 'Clear')));

  const next = new URLSearchParams(q);
  if (data.next_cursor) next.set('cursor', data.next_cursor);
  const first = new URLSearchParams(q);
  first.delete('cursor');

  return [
    h('h1', null, 'Tenants'),
    h('p', null, h('a', { href: '/tenants/new', class: 'button' }, 'Onboard a tenant')),
    form,
    table('Tenants', ['Name', 'Slug', 'Status', 'Tier', 'Home Region', 'Regions', 'Plan', 'Labels'],
      items.map((t) => [
        h('a', { href: `/tenants/${t.id}` }, t.name),
        h('code', null, t.slug),
        badge(t.status),
        t.tier,
        t.home_region,
        t.regions.join(', '),
        t.plan,
        Object.entries(t.labels).map(([k, v]) => h('span', { class: 'tag' }, v ? `${k}=${v}` : k)),
      ]), 'no tenant matches.'),
    h('nav', { class: 'pager', 'aria-label': 'Pages' },
      cursor ? h('a', { href: `/tenants${first.size ? `?${first}` : ''}` }, 'First page') : null,
      data.next_cursor ? h('a', { href: `/tenants?${next}`, rel: 'next' }, 'Next page') : null),
  ];
}

// --- Onboarding ---------------------------------------------------------------

/** showFieldErrors puts a problem's errors[] beside the fields they name. */
function showFieldErrors(form: HTMLFormElement, p: Schemas['Problem']): Schemas['FieldError'][] {
  form.querySelectorAll('.field-error').forEach((e) => e.remove());
  form.querySelectorAll('[aria-invalid]').forEach((e) => e.removeAttribute('aria-invalid'));
  const unplaced: Schemas['FieldError'][] = [];
  for (const e of p.errors ?? []) {
    // A JSON pointer: /slug, /regions/0, /labels/Bad Key.
    const name = e.field.replace(/^\//, '').split('/')[0] ?? '';
    const box = form.querySelector<HTMLElement>(`.field[data-field="${CSS.escape(name)}"]`);
    if (!box) {
      unplaced.push(e);
      continue;
    }
    const control = box.querySelector<HTMLElement>('input, select, textarea');
    const id = `${control?.id ?? name}-error`;
    box.append(h('p', { class: 'field-error', id }, e.message));
    if (control) {
      control.setAttribute('aria-invalid', 'true');
      control.setAttribute('aria-describedby', [control.getAttribute('aria-describedby'), id].filter(Boolean).join(' '));
    }
  }
  return unplaced;
}

export function onboardPage() {
  const out = h('div');
  const regions = h('select', { id: 'regions', name: 'regions', multiple: true, size: 6 }, REGIONS.map((r) => h('option', { value: r }, r)));
  const form: HTMLFormElement = h('form', {
    class: 'card', novalidate: true,
    onSubmit: async (e: Event) => {
      e.preventDefault();
      const fd = new FormData(form);
      const str = (k: string) => String(fd.get(k) ?? '').trim();
      const body: Schemas['TenantCreate'] = {
        name: str('name'),
        slug: str('slug'),
        tier: str('tier') as Schemas['Tier'],
        home_region: str('home_region') as Schemas['Region'],
      };
      const more = fd.getAll('regions').map(String).filter(isRegion);
      if (more.length) body.regions = [body.home_region, ...more.filter((r) => r !== body.home_region)];
      if (str('plan')) body.plan = str('plan');
      if (str('contact_email')) body.contact_email = str('contact_email');
      const labels = parseLabels(str('labels'));
      if (Object.keys(labels).length) body.labels = labels;
      out.replaceChildren(busy('Onboarding…'));
      try {
        const { data } = await must(api.POST('/v1/tenants', { body }));
        navigate(`/tenants/${data.id}`);
      } catch (err) {
        const p = toProblem(err);
        const unplaced = showFieldErrors(form, p);
        out.replaceChildren(problemBox({ ...p, errors: unplaced }));
        (form.querySelector('[aria-invalid="true"]') as HTMLElement | null)?.focus();
      }
    },
  },
  field('Name', h('input', { id: 'name', name: 'name', autocomplete: 'organization' })),
  field('Slug', h('input', { id: 'slug', name: 'slug' }), 'Lowercase letters, digits and hyphens, 3 to 40 characters.'),
  field('Tier', select('tier', 'tier', TIERS, 'pooled'), 'pooled: a slice of the Region’s shared pool; dedicated: a stack of its own.'),
  field('Home Region', select('home_region', 'home_region', REGIONS, 'eu-west-1'), 'Where the tenant’s profiles live.'),
  field('Further Regions', regions, 'Optional; hold Ctrl or Shift to choose several.'),
  field('Plan', h('input', { id: 'plan', name: 'plan' })),
  field('Contact email', h('input', { id: 'contact_email', name: 'contact_email', type: 'email', autocomplete: 'email' })),
  field('Labels', h('textarea', { id: 'labels', name: 'labels', rows: 3 }), 'One key=value a line.'),
  h('button', { type: 'submit' }, 'Onboard'));
  return [h('h1', null, 'Onboard a tenant'), out, form];
}

// --- Tenant detail --------------------------------------------------------------

const ACTIVE = new Set(['provisioning', 'deprovisioning']);

function conflictBox(p: Schemas['Problem']): HTMLElement {
  return problemBox(p,
    h('p', null, 'The tenant changed since this page loaded it; nothing was done. Reload to see its current state, then try again.'),
    h('button', { type: 'button', onClick: () => render() }, 'Reload'));
}

export async function tenantPage(params: Record<string, string>) {
  const id = params.tenant ?? '';
  const r = await must(api.GET('/v1/tenants/{tenant_id}', { params: { path: { tenant_id: id } } }));
  const t = r.data;
  const etag = etagOf(t, r.response);
  const out = h('div', { id: 'action-result', 'aria-live': 'polite' });

  async function act(what: string, call: () => Promise<unknown>) {
    out.replaceChildren(busy(`${what}…`));
    try {
      await call();
      render();
    } catch (err) {
      const p = toProblem(err);
      out.replaceChildren(err instanceof ApiError && (p.status === 409 || p.status === 412) ? conflictBox(p) : problemBox(p));
    }
  }
  const path = { path: { tenant_id: id } };
  const headers = { 'If-Match': etag };
  const actions: Child[] = [];
  if (t.status === 'active') actions.push(h('button', { type: 'button', onClick: () => act('Suspending', () => must(api.POST('/v1/tenants/{tenant_id}/suspend', { params: { ...path, header: headers } }))) }, 'Suspend'));
  if (t.status === 'suspended') actions.push(h('button', { type: 'button', onClick: () => act('Resuming', () => must(api.POST('/v1/tenants/{tenant_id}/resume', { params: { ...path, header: headers } }))) }, 'Resume'));
  if (t.status === 'failed') actions.push(h('button', { type: 'button', onClick: () => act('Retrying', () => must(api.POST('/v1/tenants/{tenant_id}/retry', { params: { ...path, header: headers } }))) }, 'Retry provisioning'));

  let offboard: HTMLElement | null = null;
  if (t.status !== 'deleted' && t.status !== 'deprovisioning') {
    const confirmInput = h('input', { id: 'offboard-confirm', autocomplete: 'off' });
    const purge = h('input', { id: 'offboard-purge', type: 'checkbox' });
    const go = h('button', { type: 'submit', class: 'danger', disabled: true }, 'Offboard');
    confirmInput.addEventListener('input', () => (go.disabled = confirmInput.value !== t.slug));
    offboard = h('form', {
      class: 'card danger-zone',
      onSubmit: (e: Event) => {
        e.preventDefault();
        if (confirmInput.value !== t.slug) return;
        void act('Offboarding', () => must(api.DELETE('/v1/tenants/{tenant_id}', { params: { ...path, header: headers, query: { purge: purge.checked } } })));
      },
    },
    h('p', null, 'Offboarding revokes the tenant’s grants and write keys, deletes its profiles and takes its stacks away.'),
    h('div', { class: 'field' }, h('label', { for: 'offboard-confirm' }, `Type the slug “${t.slug}” to confirm`), confirmInput),
    h('div', { class: 'check' }, purge, h('label', { for: 'offboard-purge' }, 'Also delete retained data buckets')),
    go);
  }

  const stacks = slot('Loading stacks');
  void fill(stacks, () => stacksView(id, t));
  if (ACTIVE.has(t.status)) {
    // Live status while a long operation runs: the stacks as they move,
    // and the whole page once the tenant changes.
    const timer = window.setInterval(async () => {
      const now = await api.GET('/v1/tenants/{tenant_id}', { params: { path: { tenant_id: id } } });
      if (now.data && (now.data.status !== t.status || now.data.version !== t.version)) render();
      else void fill(stacks, () => stacksView(id, t));
    }, 1000);
    onLeave(() => window.clearInterval(timer));
  }
  const sources = slot('Loading sources');
  void fill(sources, () => sourcesView(id));
  const identity = slot('Loading identity configuration');
  void fill(identity, () => identityView(id));
  const principals = slot('Loading principals');
  void fill(principals, () => principalsView(id));
  const webhooks = slot('Loading webhooks');
  void fill(webhooks, () => tenantWebhooksView(id));
  const grants = slot('Loading grants');
  void fill(grants, () => grantsView(id, t));

  return [
    h('p', { class: 'crumbs' }, h('a', { href: '/tenants' }, 'Tenants'), ' / ', t.slug),
    h('h1', null, t.name, ' ', badge(t.status)),
    t.status_reason ? h('p', { class: 'notice' }, t.status_reason) : null,
    ACTIVE.has(t.status) ? busy(t.status === 'provisioning' ? 'Provisioning the tenant’s stacks…' : 'Taking the tenant’s stacks away…') : null,
    dl([
      ['ID', h('code', null, t.id)], ['Slug', h('code', null, t.slug)], ['Tier', t.tier], ['Home Region', t.home_region],
      ['Regions', t.regions.join(', ')], ['Plan', t.plan || '—'], ['Contact', t.contact_email || '—'],
      ['Labels', Object.entries(t.labels).map(([k, v]) => h('span', { class: 'tag' }, v ? `${k}=${v}` : k))],
      ['Version', String(t.version)], ['Created', fmtTime(t.created_at)], ['Updated', fmtTime(t.updated_at)],
    ]),
    h('p', { class: 'links' },
      h('a', { href: `/tenants/${id}/profiles` }, 'Profiles'), ' · ',
      h('a', { href: `/tenants/${id}/segments` }, 'Segments'), ' · ',
      h('a', { href: `/tenants/${id}/webhooks` }, 'Webhooks'), ' · ',
      h('a', { href: `/audit?tenant_id=${id}` }, 'Audit log')),
    t.status === 'deleted' ? null : h('details', null, h('summary', null, 'Edit the tenant'), editForm(t, etag, out)),
    section('Lifecycle', actions.length ? h('div', { class: 'actions' }, actions) : h('p', { class: 'muted' }, `No lifecycle action applies to a ${t.status} tenant.`), out,
      offboard ? h('details', null, h('summary', null, 'Offboard this tenant'), offboard) : null),
    section('Stacks', stacks),
    section('Usage', tenantUsageView(id)),
    section('Sources', sources),
    section('Identity configuration', identity),
    section('Webhooks', webhooks),
    section('Principals', principals),
    section('Grants', grants),
    section('Tokens and credentials', accessView(id, t)),
  ];
}

/** editForm changes name, plan, contact, labels and adds Regions, with If-Match. */
function editForm(t: Tenant, etag: string, out: HTMLElement): HTMLFormElement {
  const more = h('select', { id: 'edit-regions', name: 'regions', multiple: true, size: 5 },
    REGIONS.filter((r) => !t.regions.includes(r)).map((r) => h('option', { value: r }, r)));
  const form: HTMLFormElement = h('form', {
    class: 'card', novalidate: true,
    onSubmit: async (e: Event) => {
      e.preventDefault();
      const fd = new FormData(form);
      const str = (k: string) => String(fd.get(k) ?? '').trim();
      const body: Schemas['TenantUpdate'] = { name: str('name'), plan: str('plan'), labels: parseLabels(str('labels')) };
      if (str('contact_email')) body.contact_email = str('contact_email');
      const added = fd.getAll('regions').map(String).filter(isRegion);
      if (added.length) body.regions = [...t.regions, ...added];
      out.replaceChildren(busy('Saving…'));
      try {
        await must(api.PATCH('/v1/tenants/{tenant_id}', { params: { path: { tenant_id: t.id }, header: { 'If-Match': etag } }, body }));
        render();
      } catch (err) {
        const p = toProblem(err);
        const unplaced = showFieldErrors(form, p);
        out.replaceChildren(p.status === 409 || p.status === 412 ? conflictBox(p) : problemBox({ ...p, errors: unplaced }));
      }
    },
  },
  field('Name', h('input', { id: 'edit-name', name: 'name', value: t.name })),
  field('Plan', h('input', { id: 'edit-plan', name: 'plan', value: t.plan })),
  field('Contact email', h('input', { id: 'edit-contact', name: 'contact_email', type: 'email', value: t.contact_email })),
  field('Labels', h('textarea', { id: 'edit-labels', name: 'labels', rows: 3 }, Object.entries(t.labels).map(([k, v]) => `${k}=${v}`).join('\n')), 'One key=value a line; replaces the whole set.'),
  field('Add Regions', more, 'Regions can only be added; each new one is provisioned.'),
  h('button', { type: 'submit' }, 'Save'));
  return form;
}

async function stacksView(id: string, t: Tenant): Promise<Child> {
  const { data } = await must(api.GET('/v1/tenants/{tenant_id}/stacks', { params: { path: { tenant_id: id } } }));
  const events = h('div', { id: 'stack-events' });
  const showEvents = async (region: Schemas['Region']) => {
    events.replaceChildren(busy(`Loading ${region} stack events`));
    await fill(events, async () => {
      const ev = await must(api.GET('/v1/tenants/{tenant_id}/stacks/{region}/events', { params: { path: { tenant_id: id, region } } }));
      return table(`Stack events in ${region}`, ['Time', 'Resource', 'Type', 'Status', 'Reason'],
        ev.data.items.map((e) => [fmtTime(e.time), e.logical_id, e.resource_type, e.status, e.reason ?? '']));
    });
  };
  const retry = async (region: Schemas['Region']) => {
    await fill(events, async () => {
      await must(api.POST('/v1/tenants/{tenant_id}/stacks/{region}/retry', { params: { path: { tenant_id: id, region } } }));
      render();
      return null;
    });
  };
  return [
    table(`Stacks of ${t.slug}`, ['Region', 'Kind', 'Status', 'Stack', 'CloudFormation status', 'Attempt', 'Last error', ''],
      data.items.map((st) => [
        st.region, st.kind, badge(st.status), h('code', null, st.stack_name), st.stack_status ?? '', String(st.attempt), st.last_error ?? '',
        h('span', { class: 'actions' },
          h('button', { type: 'button', class: 'small', onClick: () => showEvents(st.region) }, `Events (${st.region})`),
          st.status === 'failed' ? h('button', { type: 'button', class: 'small', onClick: () => retry(st.region) }, 'Retry') : null),
      ]), 'none yet.'),
    // What each stack made (buckets, table, role, a pooled tenant's
    // prefixes), under the API's stable keys.
    data.items.filter((st) => Object.keys(st.outputs).length > 0).map((st) =>
      h('details', { class: 'stack-outputs' }, h('summary', null, `Outputs (${st.region})`),
        dl(Object.entries(st.outputs).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, h('code', null, v)])))),
    events,
  ];
}

function keyOnce(label: string, key: string | null): HTMLElement {
  if (key === null) {
    // A replayed creation: the key was shown the first time only.
    return h('div', { class: 'card secret' },
      h('p', null, h('strong', null, label), ' It was shown when the source was made and is not kept; rotate the source for a new key.'));
  }
  const status = h('span', { role: 'status', class: 'muted' });
  return h('div', { class: 'card secret' },
    h('p', null, h('strong', null, label), ' It is shown once: copy it now.'),
    h('p', null, h('code', { class: 'write-key' }, key), ' ',
      h('button', { type: 'button', class: 'small', onClick: async () => {
        try {
          await navigator.clipboard.writeText(key);
          status.textContent = 'Copied.';
        } catch {
          status.textContent = 'Copy failed; select the key and copy it.';
        }
      } }, 'Copy'), ' ', status));
}

async function sourcesView(id: string): Promise<Child> {
  const { data } = await must(api.GET('/v1/tenants/{tenant_id}/sources', { params: { path: { tenant_id: id } } }));
  const out = h('div', { 'aria-live': 'polite' });
  const path = (source_id: string) => ({ path: { tenant_id: id, source_id } });
  const rotate = async (sid: string) => {
    try {
      const r = await must(api.POST('/v1/tenants/{tenant_id}/sources/{source_id}/rotate', { params: path(sid) }));
      out.replaceChildren(keyOnce(`New write key of ${r.data.name}.`, r.data.write_key));
    } catch (err) {
      out.replaceChildren(problemBox(toProblem(err)));
    }
  };
  const revoke = async (sid: string, name: string) => {
    if (!window.confirm(`Revoke the write key of ${name}? Its clients stop sending at once.`)) return;
    try {
      await must(api.DELETE('/v1/tenants/{tenant_id}/sources/{source_id}', { params: path(sid) }));
      render();
    } catch (err) {
      out.replaceChildren(problemBox(toProblem(err)));
    }
  };
  const name = h('input', { id: 'source-name', name: 'name', required: true });
  const origins = h('input', { id: 'source-origins', name: 'origins', placeholder: 'https://shop.example, …' });
  const create = h('form', {
    class: 'card inline',
    onSubmit: async (e: Event) => {
      e.preventDefault();
      const body: Schemas['SourceCreate'] = { name: name.value.trim() };
      const o = origins.value.split(/[\s,]+/).filter(Boolean);
      if (o.length) body.allowed_origins = o;
      try {
        const r = await must(api.POST('/v1/tenants/{tenant_id}/sources', { params: { path: { tenant_id: id } }, body }));
        const list = await sourcesView(id);
        const host = create.closest('.slot') ?? create.parentElement;
        host?.replaceChildren(...h('div', null, list).childNodes);
        host?.prepend(keyOnce(`Write key of ${r.data.name}.`, r.data.write_key));
      } catch (err) {
        out.replaceChildren(problemBox(toProblem(err)));
      }
    },
  },
  h('div', { class: 'field' }, h('label', { for: 'source-name' }, 'Source name'), name),
  h('div', { class: 'field' }, h('label', { for: 'source-origins' }, 'Allowed origins (optional)'), origins),
  h('button', { type: 'submit' }, 'Create source'));
  return [
    table('Sources', ['Name', 'Key', 'Origins', 'Created', 'State', ''], data.items.map((src) => [
      src.name, h('code', null, `${src.key_hint}…`), src.allowed_origins.join(', ') || 'any', fmtTime(src.created_at),
      src.revoked ? badge('revoked') : badge('active'),
      src.revoked ? '' : h('span', { class: 'actions' },
        h('button', { type: 'button', class: 'small', onClick: () => rotate(src.id) }, `Rotate ${src.name}`),
        h('button', { type: 'button', class: 'small danger', onClick: () => revoke(src.id, src.name) }, `Revoke ${src.name}`)),
    ]), 'none yet.'),
    out,
    create,
  ];
}

async function identityView(id: string): Promise<Child> {
  const { data } = await must(api.GET('/v1/tenants/{tenant_id}/identity-config', { params: { path: { tenant_id: id } } }));
  const out = h('div', { 'aria-live': 'polite' });
  const text = h('textarea', { id: 'identity-json', rows: 8, spellcheck: 'false' });
  text.value = JSON.stringify(data.identifiers, null, 2);
  const form = h('form', {
    onSubmit: async (e: Event) => {
      e.preventDefault();
      let identifiers: Schemas['IdentifierRule'][];
      try {
        identifiers = JSON.parse(text.value) as Schemas['IdentifierRule'][];
      } catch (err) {
        out.replaceChildren(problemBox({ type: 'about:blank', title: 'Not JSON', status: 0, detail: String(err), request_id: '' }));
        return;
      }
      try {
        await must(api.PUT('/v1/tenants/{tenant_id}/identity-config', { params: { path: { tenant_id: id } }, body: { identifiers } }));
        out.replaceChildren(h('p', { class: 'notice', role: 'status' }, 'Saved.'));
      } catch (err) {
        out.replaceChildren(problemBox(toProblem(err)));
      }
    },
  },
  h('div', { class: 'field' }, h('label', { for: 'identity-json' }, 'Identifier rules (JSON)'), text),
  h('button', { type: 'submit' }, 'Save identity configuration'));
  return [
    table('Identifier rules', ['Type', 'Priority', 'Limit', 'Blocked'], data.identifiers.map((r) => [r.type, String(r.priority), String(r.limit), (r.blocked ?? []).join(', ')])),
    h('details', null, h('summary', null, 'Edit'), form),
    out,
  ];
}
