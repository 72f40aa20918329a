// A tenant's governance: the AWS principals that may receive its grants,
// its Lake Formation grants, tenant tokens and short-lived AWS credentials.
import { h, fmtTime, type Child } from '../dom';
import { api, must, toProblem, type Schemas, type Tenant } from '../api';
import { render } from '../router';
import { badge, busy, dl, problemBox, table } from '../ui';

const PERMISSIONS = ['SELECT', 'DESCRIBE', 'INSERT', 'DELETE', 'ALTER', 'DROP', 'DATA_LOCATION_ACCESS'] as const satisfies readonly Schemas['Permission'][];
const SCOPES = ['profiles:read', 'profiles:write', 'events:write', 'segments:read', 'segments:write', 'webhooks:read', 'webhooks:write', 'grants:write'] as const satisfies readonly Schemas['TenantScope'][];

function field(id: string, label: string, control: HTMLElement): HTMLElement {
  control.id = id;
  return h('div', { class: 'field' }, h('label', { for: id }, label), control);
}

function checks(name: string, legend: string, values: readonly string[], checked: readonly string[]): HTMLElement {
  return h('fieldset', { class: 'checks' }, h('legend', null, legend),
    values.map((v) => h('span', { class: 'check' },
      h('input', { type: 'checkbox', id: `${name}-${v}`, name, value: v, checked: checked.includes(v) }),
      h('label', { for: `${name}-${v}` }, v))));
}

function checked(form: HTMLFormElement, name: string): string[] {
  return Array.from(form.querySelectorAll<HTMLInputElement>(`input[name="${name}"]:checked`)).map((i) => i.value);
}

export async function principalsView(id: string): Promise<Child> {
  const { data } = await must(api.GET('/v1/tenants/{tenant_id}/principals', { params: { path: { tenant_id: id } } }));
  const out = h('div', { 'aria-live': 'polite' });
  const remove = async (principal: string) => {
    if (!window.confirm(`Remove ${principal}? Its grants must be revoked first.`)) return;
    try {
      await must(api.DELETE('/v1/tenants/{tenant_id}/principals', { params: { path: { tenant_id: id } }, body: { principal } }));
      render();
    } catch (err) {
      out.replaceChildren(problemBox(toProblem(err)));
    }
  };
  const input = h('input', { name: 'principal', placeholder: '123456789012 or arn:aws:iam::…:role/…' });
  const form = h('form', {
    class: 'card inline',
    onSubmit: async (e: Event) => {
      e.preventDefault();
      try {
        await must(api.POST('/v1/tenants/{tenant_id}/principals', { params: { path: { tenant_id: id } }, body: { principal: input.value.trim() } }));
        render();
      } catch (err) {
        out.replaceChildren(problemBox(toProblem(err)));
      }
    },
  }, field('principal-new', 'AWS account ID or role ARN', input), h('button', { type: 'submit' }, 'Register principal'));
  return [
    table('Principals', ['Principal', 'Registered', ''], data.items.map((p) => [
      h('code', null, p.principal), fmtTime(p.created_at),
      h('button', { type: 'button', class: 'small danger', onClick: () => remove(p.principal) }, `Remove ${p.principal}`),
    ]), 'none registered.'),
    out, form,
  ];
}

export async function grantsView(id: string, t: Tenant): Promise<Child> {
  const { data } = await must(api.GET('/v1/tenants/{tenant_id}/grants', { params: { path: { tenant_id: id } } }));
  const out = h('div', { 'aria-live': 'polite' });
  const revoke = async (gid: string) => {
    if (!window.confirm('Revoke this grant?')) return;
    try {
      await must(api.DELETE('/v1/tenants/{tenant_id}/grants/{grant_id}', { params: { path: { tenant_id: id, grant_id: gid } } }));
      render();
    } catch (err) {
      out.replaceChildren(problemBox(toProblem(err)));
    }
  };
  const reconcile = async () => {
    out.replaceChildren(busy('Reconciling grants with Lake Formation…'));
    try {
      const r = await must(api.POST('/v1/tenants/{tenant_id}/grants/reconcile', { params: { path: { tenant_id: id } } }));
      out.replaceChildren(h('div', { class: 'card', role: 'status' },
        h('p', null, `Repaired ${r.data.repaired.length} grant(s) in ${r.data.regions.join(', ') || 'no Region'}.`
          + (r.data.dropped_filters.length ? ` Deleted ${r.data.dropped_filters.length} data cells filter(s) no grant went through: ${r.data.dropped_filters.map((f) => `${f.database}.${f.table}/${f.name}`).join(', ')}.` : '')),
        table('Permissions outside the broker', ['Principal', 'Resource', 'Permissions'], r.data.unmanaged.map((u) => [
          h('code', null, u.principal), [u.resource.region, u.resource.database, u.resource.table].filter(Boolean).join(' / '), u.permissions.join(', '),
        ]), 'none.')));
    } catch (err) {
      out.replaceChildren(problemBox(toProblem(err)));
    }
  };
  const form: HTMLFormElement = h('form', {
    class: 'card',
    onSubmit: async (e: Event) => {
      e.preventDefault();
      const fd = new FormData(form);
      const str = (k: string) => String(fd.get(k) ?? '').trim();
      const resource: Schemas['GrantResource'] = { region: str('region') as Schemas['Region'], database: str('database') };
      if (str('table')) resource.table = str('table');
      const cols = str('columns').split(/[\s,]+/).filter(Boolean);
      if (cols.length) resource.columns = cols;
      try {
        await must(api.POST('/v1/tenants/{tenant_id}/grants', { params: { path: { tenant_id: id } },
          body: { principal: str('principal'), resource, permissions: checked(form, 'permission') as Schemas['Permission'][] } }));
        render();
      } catch (err) {
        out.replaceChildren(problemBox(toProblem(err)));
      }
    },
  },
  h('h3', null, 'New grant'),
  field('grant-principal', 'Principal', h('input', { name: 'principal' })),
  field('grant-region', 'Region', h('select', { name: 'region' }, t.regions.map((r) => h('option', { value: r }, r)))),
  field('grant-database', 'Glue database (glue_database of the stack)', h('input', { name: 'database' })),
  field('grant-table', 'Table (optional)', h('input', { name: 'table' })),
  field('grant-columns', 'Columns (optional, comma-separated)', h('input', { name: 'columns' })),
  // A pooled tenant reads a shared table through its data cells filter, so
  // it may not be granted SELECT on the whole database: offer DESCRIBE.
  checks('permission', 'Permissions', PERMISSIONS, t.tier === 'pooled' ? ['DESCRIBE'] : ['SELECT', 'DESCRIBE']),
  h('button', { type: 'submit' }, 'Grant'));
  return [
    table('Grants', ['Principal', 'Resource', 'Permissions', 'Status', 'Reason', ''], data.items.map((g) => [
      h('code', null, g.principal), [g.resource.region, g.resource.database, g.resource.table, g.resource.columns?.join(', ')].filter(Boolean).join(' / '),
      g.permissions.join(', '), badge(g.status), g.reason ?? '',
      g.status === 'revoked' || g.status === 'revoking' ? '' : h('button', { type: 'button', class: 'small danger', onClick: () => revoke(g.id) }, 'Revoke'),
    ]), 'none.'),
    h('p', null, h('button', { type: 'button', class: 'secondary', onClick: reconcile }, 'Reconcile with Lake Formation')),
    out,
    h('details', null, h('summary', null, 'Add a grant'), form),
  ];
}

export function accessView(id: string, t: Tenant): Child {
  const out = h('div', { 'aria-live': 'polite' });
  const ttl = h('input', { name: 'ttl', type: 'number', min: 60, max: 86400, value: 3600 });
  const form: HTMLFormElement = h('form', {
    class: 'card',
    onSubmit: async (e: Event) => {
      e.preventDefault();
      try {
        const r = await must(api.POST('/v1/tenants/{tenant_id}/tokens', { params: { path: { tenant_id: id } },
          body: { scopes: checked(form, 'scope') as Schemas['TenantScope'][], ttl_seconds: Number(ttl.value) } }));
        out.replaceChildren(h('div', { class: 'card secret', role: 'status' },
          h('p', null, h('strong', null, 'Tenant token'), ` (expires ${fmtTime(r.data.expires_at)}). It is shown once.`),
          h('p', null, h('code', null, r.data.token))));
      } catch (err) {
        out.replaceChildren(problemBox(toProblem(err)));
      }
    },
  },
  h('h3', null, 'Tenant token'),
  checks('scope', 'Scopes', SCOPES, ['profiles:read', 'events:write']),
  field('token-ttl', 'Lifetime (seconds)', ttl),
  h('button', { type: 'submit', disabled: t.status !== 'active' }, 'Mint tenant token'));
  const creds = h('button', {
    type: 'button', class: 'secondary', disabled: t.status !== 'active',
    onClick: async () => {
      try {
        const r = await must(api.POST('/v1/tenants/{tenant_id}/credentials', { params: { path: { tenant_id: id } } }));
        out.replaceChildren(h('div', { class: 'card secret', role: 'status' },
          h('p', null, h('strong', null, 'AWS credentials'), ` for ${r.data.role_arn} in ${r.data.region}, until ${fmtTime(r.data.expires_at)}. Shown once.`),
          dl([['Access key ID', h('code', null, r.data.access_key_id)], ['Secret access key', h('code', null, r.data.secret_access_key)],
            ['Session token', h('code', null, r.data.session_token)]])));
      } catch (err) {
        out.replaceChildren(problemBox(toProblem(err)));
      }
    },
  }, 'Issue one-hour AWS credentials');
  return [form, h('p', null, creds), out];
}
