import { h, fmtTime } from '../dom';
import { api, must, toProblem, type Schemas } from '../api';
import { render } from '../router';
import { busy, problemBox, section, table } from '../ui';
import { OPERATORS } from '../enums';

function describe(c: Schemas['SegmentCondition']): string {
  return c.value === undefined ? `${c.trait} ${c.operator}` : `${c.trait} ${c.operator} ${JSON.stringify(c.value)}`;
}

export async function segmentsPage(params: Record<string, string>) {
  const id = params.tenant ?? '';
  const { data } = await must(api.GET('/v1/tenants/{tenant_id}/segments', { params: { path: { tenant_id: id }, query: { limit: 200 } } }));
  const out = h('div', { 'aria-live': 'polite' });
  const rows = h('div', { class: 'conditions' });
  let n = 0;
  const addRow = () => {
    n += 1;
    const i = n;
    rows.append(h('fieldset', { class: 'condition' },
      h('legend', null, `Condition ${i}`),
      h('div', { class: 'field' }, h('label', { for: `c${i}-trait` }, 'Trait'), h('input', { id: `c${i}-trait`, name: 'trait' })),
      h('div', { class: 'field' }, h('label', { for: `c${i}-op` }, 'Operator'), h('select', { id: `c${i}-op`, name: 'operator' }, OPERATORS.map((o) => h('option', { value: o }, o)))),
      h('div', { class: 'field' }, h('label', { for: `c${i}-value` }, 'Value (JSON, or text)'), h('input', { id: `c${i}-value`, name: 'value' }))));
  };
  addRow();
  const form: HTMLFormElement = h('form', {
    class: 'card', novalidate: true,
    onSubmit: async (e: Event) => {
      e.preventDefault();
      const fd = new FormData(form);
      const conditions: Schemas['SegmentCondition'][] = [];
      for (const fs of Array.from(rows.querySelectorAll('fieldset'))) {
        const get = (name: string) => (fs.querySelector(`[name="${name}"]`) as HTMLInputElement).value.trim();
        const raw = get('value');
        let value: unknown = undefined;
        if (raw) {
          try { value = JSON.parse(raw); } catch { value = raw; }
        }
        conditions.push({ trait: get('trait'), operator: get('operator') as Schemas['SegmentCondition']['operator'], value });
      }
      const body: Schemas['SegmentCreate'] = { name: String(fd.get('name') ?? '').trim(), match: fd.get('match') === 'any' ? 'any' : 'all', conditions };
      const desc = String(fd.get('description') ?? '').trim();
      if (desc) body.description = desc;
      out.replaceChildren(busy('Creating the segment…'));
      try {
        await must(api.POST('/v1/tenants/{tenant_id}/segments', { params: { path: { tenant_id: id } }, body }));
        render();
      } catch (err) {
        out.replaceChildren(problemBox(toProblem(err)));
      }
    },
  },
  h('div', { class: 'field' }, h('label', { for: 'seg-name' }, 'Name'), h('input', { id: 'seg-name', name: 'name' })),
  h('div', { class: 'field' }, h('label', { for: 'seg-desc' }, 'Description'), h('input', { id: 'seg-desc', name: 'description' })),
  h('div', { class: 'field' }, h('label', { for: 'seg-match' }, 'Profiles must meet'),
    h('select', { id: 'seg-match', name: 'match' }, h('option', { value: 'all' }, 'all conditions'), h('option', { value: 'any' }, 'any condition'))),
  rows,
  h('p', null, h('button', { type: 'button', class: 'secondary', onClick: addRow }, 'Add condition')),
  h('button', { type: 'submit' }, 'Create segment'));

  const del = async (sid: string, name: string) => {
    if (!window.confirm(`Delete the segment ${name}?`)) return;
    try {
      await must(api.DELETE('/v1/tenants/{tenant_id}/segments/{segment_id}', { params: { path: { tenant_id: id, segment_id: sid } } }));
      render();
    } catch (err) {
      out.replaceChildren(problemBox(toProblem(err)));
    }
  };
  return [
    h('p', { class: 'crumbs' }, h('a', { href: `/tenants/${id}` }, 'Tenant'), ' / Segments'),
    h('h1', null, 'Segments'),
    table('Segments', ['Name', 'Match', 'Conditions', 'Status', 'Created', ''], data.items.map((sg) => [
      sg.name, sg.match ?? 'definition',
      sg.conditions
        ? h('ul', { class: 'plain' }, sg.conditions.map((c) => h('li', null, h('code', null, describe(c)))))
        : h('code', null, JSON.stringify(sg.definition ?? {})),
      sg.status === 'computing' ? `computing (${sg.progress}%)` : sg.status, fmtTime(sg.created_at),
      h('button', { type: 'button', class: 'small danger', onClick: () => del(sg.id, sg.name) }, `Delete ${sg.name}`),
    ]), 'none yet.'),
    out,
    section('New segment', h('p', { class: 'muted' }, 'Memberships are computed by a job when a segment is made, then kept up to date as profiles change.'), form),
  ];
}
