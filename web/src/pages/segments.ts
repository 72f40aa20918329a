// Segments: the list, the definition editor (version 2: a JSON condition
// tree, with templates for each leaf kind, a live preview and the API's
// validation errors beside it by JSON Pointer), and a segment's page with
// its members and a recompute that shows its progress.
import { h, fmtTime, type Child } from '../dom';
import { api, must, toProblem, type Schemas } from '../api';
import { navigate, onLeave, render } from '../router';
import { badge, busy, conflictNotice, dl, fill, problemBox, section, slot, table } from '../ui';

type Segment = Schemas['Segment'];
type FieldError = Schemas['FieldError'];

function crumbs(tenant: string, ...rest: Child[]): HTMLElement {
  return h('p', { class: 'crumbs' }, h('a', { href: `/tenants/${tenant}` }, 'Tenant'), ' / ', h('a', { href: `/tenants/${tenant}/segments` }, 'Segments'), rest.length ? [' / ', rest] : null);
}

/** definitionOf is a segment's definition; a version 1 segment's conditions become the same tree. */
function definitionOf(sg: Segment): Record<string, unknown> {
  if (sg.definition) return sg.definition;
  const leaves = (sg.conditions ?? []).map((c) => (c.value === undefined ? { trait: c.trait, operator: c.operator } : { trait: c.trait, operator: c.operator, value: c.value }));
  return { [sg.match === 'any' ? 'any' : 'all']: leaves };
}

function summary(sg: Segment): string {
  const text = JSON.stringify(definitionOf(sg));
  return text.length > 120 ? `${text.slice(0, 119)}…` : text;
}

function statusCell(sg: Segment): Child {
  return sg.status === 'computing'
    ? [badge('computing'), ' ', h('progress', { max: 100, value: sg.progress, 'aria-label': `${sg.name}: computing, ${sg.progress}%` }), ` ${sg.progress}%`]
    : badge(sg.status);
}

// --- The list -------------------------------------------------------------------

export async function segmentsPage(params: Record<string, string>, q: URLSearchParams) {
  const id = params.tenant ?? '';
  const cursor = q.get('cursor') ?? undefined;
  const { data } = await must(api.GET('/v1/tenants/{tenant_id}/segments', { params: { path: { tenant_id: id }, query: { limit: 100, cursor } } }));
  const out = h('div', { 'aria-live': 'polite' });
  const del = async (sid: string, name: string) => {
    if (!window.confirm(`Delete the segment ${name}? No profile will be a member of it any more.`)) return;
    try {
      await must(api.DELETE('/v1/tenants/{tenant_id}/segments/{segment_id}', { params: { path: { tenant_id: id, segment_id: sid } } }));
      render();
    } catch (err) {
      out.replaceChildren(problemBox(toProblem(err)));
    }
  };
  if (data.items.some((sg) => sg.status === 'computing')) {
    const timer = window.setTimeout(() => render(), 2000);
    onLeave(() => window.clearTimeout(timer));
  }
  return [
    h('p', { class: 'crumbs' }, h('a', { href: `/tenants/${id}` }, 'Tenant'), ' / Segments'),
    h('h1', null, 'Segments'),
    h('p', null, h('a', { href: `/tenants/${id}/segments/new`, class: 'button' }, 'New segment')),
    out,
    table('Segments', ['Name', 'Definition', 'Status', 'Created', ''], data.items.map((sg) => [
      h('a', { href: `/tenants/${id}/segments/${sg.id}` }, sg.name),
      h('code', null, summary(sg)),
      statusCell(sg),
      fmtTime(sg.created_at),
      h('button', { type: 'button', class: 'small danger', onClick: () => del(sg.id, sg.name) }, `Delete ${sg.name}`),
    ]), 'none yet.'),
    h('nav', { class: 'pager', 'aria-label': 'Pages' },
      cursor ? h('a', { href: `/tenants/${id}/segments` }, 'First page') : null,
      data.next_cursor ? h('a', { href: `/tenants/${id}/segments?cursor=${encodeURIComponent(data.next_cursor)}`, rel: 'next' }, 'Next page') : null),
  ];
}

// --- The editor -------------------------------------------------------------------

const TEMPLATES: { label: string; node: (others: Segment[]) => Record<string, unknown> }[] = [
  { label: 'trait', node: () => ({ trait: 'plan', operator: 'equals', value: 'pro' }) },
  { label: 'event', node: () => ({ event: 'Order Completed', count: { operator: 'at_least', value: 1 }, within: '30d' }) },
  { label: 'identifier', node: () => ({ identifier: 'email', operator: 'exists' }) },
  { label: 'segment', node: (others) => ({ segment: others[0]?.id ?? 'seg_…' }) },
];

/** insert adds node to the definition: into a top all/any, or beside what is there under a new all. */
function insert(text: string, node: Record<string, unknown>): string {
  const trimmed = text.trim();
  if (!trimmed) return JSON.stringify({ all: [node] }, null, 2);
  let cur: unknown;
  try {
    cur = JSON.parse(trimmed);
  } catch {
    return `${text}${text.endsWith('\n') ? '' : '\n'}${JSON.stringify(node, null, 2)}`;
  }
  if (cur && typeof cur === 'object' && !Array.isArray(cur)) {
    const o = cur as Record<string, unknown>;
    for (const k of ['all', 'any']) {
      if (Object.keys(o).length === 1 && Array.isArray(o[k])) {
        (o[k] as unknown[]).push(node);
        return JSON.stringify(o, null, 2);
      }
    }
    if (Object.keys(o).length === 0) return JSON.stringify({ all: [node] }, null, 2);
  }
  return JSON.stringify({ all: [cur, node] }, null, 2);
}

interface EditorOpts {
  tenant: string;
  /** The level of the editor's own headings, below the page's. */
  level: 'h2' | 'h3';
  segment?: Segment;
  etag?: string;
}

/** segmentEditor creates a segment, or changes one at the ETag it was read with. */
async function segmentEditor(o: EditorOpts): Promise<HTMLElement> {
  const { tenant, segment } = o;
  const all = await must(api.GET('/v1/tenants/{tenant_id}/segments', { params: { path: { tenant_id: tenant }, query: { limit: 200 } } }));
  const others = all.data.items.filter((sg) => sg.id !== segment?.id);

  const out = h('div', { 'aria-live': 'polite' });
  const name = h('input', { id: 'seg-name', name: 'name', value: segment?.name ?? '', required: true, maxlength: 100 });
  const desc = h('input', { id: 'seg-desc', name: 'description', value: segment?.description ?? '', maxlength: 1000 });
  const def = h('textarea', { id: 'seg-def', name: 'definition', rows: 16, spellcheck: 'false', 'aria-describedby': 'seg-def-help seg-def-errors' });
  def.value = segment ? JSON.stringify(definitionOf(segment), null, 2) : '';
  const errors = h('div', { id: 'seg-def-errors', class: 'def-errors', 'aria-live': 'polite' },
    h('p', { class: 'muted' }, 'The definition is checked as you type.'));
  const preview = h('div', { id: 'seg-preview', class: 'preview', 'aria-live': 'polite' },
    h('p', { class: 'muted' }, 'Write or insert a definition to preview it.'));

  const fieldBox = (label: string, control: HTMLElement, key: string) =>
    h('div', { class: 'field', 'data-field': key }, h('label', { for: control.id }, label), control);

  /** showErrors puts errors beside the editor (a definition's, by pointer) or the field they name. */
  const showErrors = (list: FieldError[], source: string): FieldError[] => {
    form.querySelectorAll('.field-error').forEach((e) => e.remove());
    for (const c of [name, desc]) c.removeAttribute('aria-invalid');
    const defErrs = list.filter((e) => e.field === '/definition' || e.field.startsWith('/definition/'));
    const rest: FieldError[] = [];
    for (const e of list) {
      if (defErrs.includes(e)) continue;
      const key = e.field.replace(/^\//, '').split('/')[0] ?? '';
      const control = key === 'name' ? name : key === 'description' ? desc : null;
      if (!control) {
        rest.push(e);
        continue;
      }
      control.setAttribute('aria-invalid', 'true');
      control.parentElement?.append(h('p', { class: 'field-error', id: `${control.id}-error` }, e.message));
      control.setAttribute('aria-describedby', `${control.id}-error`);
    }
    if (defErrs.length) {
      def.setAttribute('aria-invalid', 'true');
      errors.replaceChildren(h('div', { class: 'problem', role: 'alert' },
        h('p', { class: 'problem-title' }, h('strong', null, `The definition is not valid (${source})`)),
        h('ul', null, defErrs.map((e) => h('li', null, h('code', { class: 'pointer' }, e.field), ' ', e.message)))));
    } else {
      def.removeAttribute('aria-invalid');
      errors.replaceChildren(h('p', { class: 'muted' }, source === 'preview' ? 'No problem found.' : ''));
    }
    return rest;
  };

  /** parse reads the textarea; a JSON error is shown as a pointer-less error beside it. */
  const parse = (): Record<string, unknown> | null => {
    try {
      const v: unknown = JSON.parse(def.value);
      if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('a definition is one JSON object');
      return v as Record<string, unknown>;
    } catch (err) {
      def.setAttribute('aria-invalid', 'true');
      errors.replaceChildren(h('div', { class: 'problem', role: 'alert' },
        h('p', { class: 'problem-title' }, h('strong', null, 'Not a JSON object')),
        h('p', null, err instanceof Error ? err.message : String(err))));
      return null;
    }
  };

  // The live preview: debounced, and only the latest answer is shown.
  let timer = 0;
  let seq = 0;
  let inflight: AbortController | null = null;
  const runPreview = async () => {
    if (!def.value.trim()) {
      errors.replaceChildren(h('p', { class: 'muted' }, 'The definition is checked as you type.'));
      def.removeAttribute('aria-invalid');
      preview.replaceChildren(h('p', { class: 'muted' }, 'Write or insert a definition to preview it.'));
      return;
    }
    const definition = parse();
    if (!definition) {
      preview.replaceChildren(h('p', { class: 'muted' }, 'No preview: the definition is not JSON yet.'));
      return;
    }
    const mine = ++seq;
    inflight?.abort();
    inflight = new AbortController();
    preview.replaceChildren(busy('Previewing…'));
    try {
      const r = await must(api.POST('/v1/tenants/{tenant_id}/segments/preview', { params: { path: { tenant_id: tenant } }, body: { definition }, signal: inflight.signal }));
      if (mine !== seq) return;
      showErrors([], 'preview');
      const n = r.data.member_count;
      preview.replaceChildren(
        h('p', { class: 'preview-count' }, h('strong', null, String(n)), n === 1 ? ' profile matches now' : ' profiles match now'),
        ...(r.data.sample.length
          ? [h('p', { class: 'muted' }, `Sample (${r.data.sample.length}):`),
            h('ul', { class: 'plain sample' }, r.data.sample.map((p) => h('li', null, h('a', { href: `/tenants/${tenant}/profiles/${p}` }, h('code', null, p)))))]
          : []));
    } catch (err) {
      if (mine !== seq || (err instanceof DOMException && err.name === 'AbortError')) return;
      const p = toProblem(err);
      const rest = showErrors(p.errors ?? [], 'preview');
      preview.replaceChildren(p.errors?.length && !rest.length ? h('p', { class: 'muted' }, 'No preview until the definition is valid.') : problemBox({ ...p, errors: rest }));
    }
  };
  const schedule = () => {
    window.clearTimeout(timer);
    timer = window.setTimeout(() => void runPreview(), 400);
  };
  def.addEventListener('input', schedule);
  onLeave(() => {
    window.clearTimeout(timer);
    inflight?.abort();
  });

  const templates = h('div', { class: 'actions templates', role: 'group', 'aria-label': 'Insert a condition' },
    TEMPLATES.map((t) => h('button', { type: 'button', class: 'small secondary', onClick: () => {
      def.value = insert(def.value, t.node(others));
      def.focus();
      schedule();
    } }, `Insert ${t.label} condition`)));

  let etag = o.etag;
  const submit = h('button', { type: 'submit' }, segment ? 'Save segment' : 'Create segment');
  const form: HTMLFormElement = h('form', {
    class: 'card editor', novalidate: true,
    onSubmit: async (e: Event) => {
      e.preventDefault();
      const definition = parse();
      if (!definition) {
        def.focus();
        return;
      }
      submit.disabled = true;
      out.replaceChildren(busy(segment ? 'Saving…' : 'Creating the segment…'));
      try {
        if (segment) {
          const body: Schemas['SegmentUpdate'] = { name: name.value.trim(), description: desc.value.trim(), definition };
          const r = await must(api.PATCH('/v1/tenants/{tenant_id}/segments/{segment_id}', {
            params: { path: { tenant_id: tenant, segment_id: segment.id }, header: etag ? { 'If-Match': etag } : {} }, body,
          }));
          etag = r.response.headers.get('ETag') ?? `"v${r.data.version}"`;
          render();
        } else {
          // `match` has a default in the contract, so the generated type
          // requires it; with a definition it must be absent (a 400).
          const body: Schemas['SegmentCreate'] = { name: name.value.trim(), definition };
          if (desc.value.trim()) body.description = desc.value.trim();
          const r = await must(api.POST('/v1/tenants/{tenant_id}/segments', { params: { path: { tenant_id: tenant } }, body }));
          navigate(`/tenants/${tenant}/segments/${r.data.id}`);
        }
      } catch (err) {
        const p = toProblem(err);
        if (p.status === 412) {
          out.replaceChildren(conflictNotice('segment', () => render()));
        } else {
          const rest = showErrors(p.errors ?? [], 'save');
          out.replaceChildren(problemBox({ ...p, errors: rest }));
          (form.querySelector('[aria-invalid="true"]') as HTMLElement | null)?.focus();
        }
      } finally {
        submit.disabled = false;
      }
    },
  },
  fieldBox('Name', name, 'name'),
  fieldBox('Description', desc, 'description'),
  h('div', { class: 'editor-grid' },
    h('div', { class: 'field', 'data-field': 'definition' },
      h('label', { for: 'seg-def' }, 'Definition (JSON)'),
      templates,
      def,
      h('p', { id: 'seg-def-help', class: 'muted' },
        'One node: {"all": [...]}, {"any": [...]} or {"not": node}; leaves are traits {"trait", "operator", "value"}, events {"event" or "event_type", "where", "count", "within" or "between"}, identifiers {"identifier", "operator": "exists"} and other segments {"segment": id}.')),
    h('div', { class: 'editor-side' },
      h(o.level, null, 'Validation'),
      errors,
      h(o.level, null, 'Live preview'),
      preview,
      others.length
        ? h('details', null, h('summary', null, 'Segments to reference'),
          h('ul', { class: 'plain' }, others.map((sg) => h('li', null, sg.name, ' ', h('code', null, sg.id)))))
        : null)),
  submit);
  if (def.value.trim()) schedule();
  return h('div', null, out, form);
}

export async function newSegmentPage(params: Record<string, string>) {
  const tenant = params.tenant ?? '';
  return [
    crumbs(tenant, 'New'),
    h('h1', null, 'New segment'),
    h('p', { class: 'muted' }, 'Memberships are computed by a job once the segment is made, then kept up to date as profiles change.'),
    await segmentEditor({ tenant, level: 'h2' }),
  ];
}

// --- A segment -----------------------------------------------------------------------

export async function segmentPage(params: Record<string, string>) {
  const tenant = params.tenant ?? '';
  const id = params.segment ?? '';
  const path = { path: { tenant_id: tenant, segment_id: id } };
  const first = await must(api.GET('/v1/tenants/{tenant_id}/segments/{segment_id}', { params: path }));
  let sg = first.data;
  const etag = first.response.headers.get('ETag') ?? `"v${sg.version}"`;

  const members = slot('Loading members');
  const loadMembers = async (cursor?: string, page = 1): Promise<Child> => {
    const r = await must(api.GET('/v1/tenants/{tenant_id}/segments/{segment_id}/members', { params: { ...path, query: { limit: 50, cursor } } }));
    const next = r.data.next_cursor;
    return [
      table(`Members, page ${page}`, ['Profile', 'Entered'], r.data.items.map((m) => [
        h('a', { href: `/tenants/${tenant}/profiles/${m.profile_id}` }, h('code', null, m.profile_id)),
        h('time', { datetime: m.entered_at }, fmtTime(m.entered_at)),
      ]), 'no profile is a member.'),
      h('div', { class: 'pager' },
        page > 1 ? h('button', { type: 'button', class: 'secondary', onClick: () => fill(members, () => loadMembers(undefined, 1)) }, 'First page') : null,
        next ? h('button', { type: 'button', class: 'secondary', onClick: () => fill(members, () => loadMembers(next, page + 1)) }, 'Next page') : null),
    ];
  };
  void fill(members, () => loadMembers());

  const statusBox = h('div', { id: 'seg-status', 'aria-live': 'polite' });
  const facts = h('div');
  const out = h('div', { 'aria-live': 'polite' });
  const recompute = h('button', { type: 'button' }, 'Recompute');
  const headBadge = h('span');
  const show = () => {
    headBadge.replaceChildren(badge(sg.status));
    facts.replaceChildren(dl([
      ['ID', h('code', null, sg.id)],
      ['Description', sg.description || '—'],
      ['Members', sg.member_count === undefined ? '—' : String(sg.member_count)],
      ['Version', String(sg.version)],
      ['Created', fmtTime(sg.created_at)],
      ['Updated', fmtTime(sg.updated_at)],
    ]));
    statusBox.replaceChildren(sg.status === 'computing'
      ? h('div', { class: 'progress-row' },
        badge('computing'), ' ',
        h('progress', { id: 'seg-progress', max: 100, value: sg.progress, 'aria-label': 'Computation progress' }),
        h('span', null, ` ${sg.progress}% of profiles computed`))
      : h('p', null, badge(sg.status), ' ', `Memberships are up to date: ${sg.member_count ?? 0} ${sg.member_count === 1 ? 'member' : 'members'}.`));
    recompute.disabled = sg.status === 'computing';
  };
  show();

  // While computing, the segment is read again until it is ready.
  let alive = true;
  let polling = false;
  onLeave(() => (alive = false));
  const poll = async () => {
    if (polling) return;
    polling = true;
    try {
      while (alive && sg.status === 'computing') {
        await new Promise((r) => setTimeout(r, 700));
        if (!alive) return;
        sg = (await must(api.GET('/v1/tenants/{tenant_id}/segments/{segment_id}', { params: path }))).data;
        if (alive) show();
      }
      if (alive) void fill(members, () => loadMembers());
    } catch (err) {
      if (alive) out.replaceChildren(problemBox(toProblem(err)));
    } finally {
      polling = false;
    }
  };
  recompute.addEventListener('click', async () => {
    recompute.disabled = true;
    try {
      const r = await must(api.POST('/v1/tenants/{tenant_id}/segments/{segment_id}/recompute', { params: path }));
      sg = r.data;
      show();
      out.replaceChildren();
      void poll();
    } catch (err) {
      out.replaceChildren(problemBox(toProblem(err)));
      recompute.disabled = false;
    }
  });
  if (sg.status === 'computing') void poll();

  return [
    crumbs(tenant, sg.name),
    h('h1', null, sg.name, ' ', headBadge),
    facts,
    section('Computation', statusBox, h('p', null, recompute), out),
    section('Definition', await segmentEditor({ tenant, segment: sg, etag, level: 'h3' })),
    section('Members', members),
  ];
}
