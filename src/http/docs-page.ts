/**
 * @module docs-page
 * A self-contained API reference page rendered from the OpenAPI document: no scripts, no CDN, so it
 * works on an offline machine and is readable as plain HTML. Operations are grouped by tag under a table
 * of contents; request bodies and answers are shown as their resolved fields (type, required, notes),
 * each with an example generated from its schema.
 */

type Json = Record<string, any>;

export interface OpenApiLike {
  info: { title: string; version: string; description?: string };
  paths?: Record<string, Record<string, OperationLike | undefined> | undefined>;
  components?: { schemas?: Record<string, Json> };
}
interface OperationLike {
  summary?: string;
  description?: string;
  tags?: string[];
  security?: unknown[];
  parameters?: { name: string; in: string; required?: boolean; description?: string; schema?: Json }[];
  requestBody?: { content?: Record<string, { schema?: Json }> };
  responses?: Record<string, { description?: string; content?: Record<string, { schema?: Json }> }>;
}

/** How deep fields are listed and examples built: a schema deeper than this is shown as "…". */
const MAX_DEPTH = 6;

const escapeHtml = (s: string) =>
  s.replace(
    /[&<>"']/g,
    (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!,
  );

const slug = (s: string) => s.toLowerCase().replace(/[^a-z0-9]+/g, '-');

export function renderDocsPage(doc: OpenApiLike): string {
  const resolve = resolverOf(doc);
  const byTag = new Map<string, string[]>();
  for (const [path, methods] of Object.entries(doc.paths ?? {})) {
    for (const [method, op] of Object.entries(methods ?? {})) {
      if (!op || typeof op !== 'object') continue;
      const tag = op.tags?.[0] ?? 'Other';
      const list = byTag.get(tag) ?? [];
      list.push(renderOperation(path, method, op, resolve));
      byTag.set(tag, list);
    }
  }
  const toc = [...byTag.entries()]
    .map(([tag, ops]) => `<li><a href="#${slug(tag)}">${escapeHtml(tag)}</a> (${ops.length})</li>`)
    .join('');
  const groups = [...byTag.entries()]
    .map(([tag, ops]) => `<h2 id="${slug(tag)}">${escapeHtml(tag)}</h2>\n${ops.join('\n')}`)
    .join('\n');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(doc.info.title)}</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
section{border-top:1px solid #ddd;padding:.5rem 0}pre{background:#f6f6f6;padding:.5rem;overflow:auto;font-size:12px}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:2px 6px;text-align:left;vertical-align:top}
.m{font:bold 12px monospace;padding:2px 6px;border-radius:3px;color:#fff;background:#555}.get{background:#2b7}
.post{background:#27b}.patch{background:#b72}.delete{background:#b33}</style></head><body>
<h1>${escapeHtml(doc.info.title)} <small>${escapeHtml(doc.info.version)}</small></h1>
<p>${escapeHtml(doc.info.description ?? '')}</p>
<p>Machine-readable: <a href="/openapi.json">/openapi.json</a>. Errors always have the shape
<code>{"error": {"code", "message", "details"}}</code>. <b>Money is always an integer in minor units</b>
of its currency (paise for INR: <code>25000</code> is ₹250.00).</p>
<h2>Contents</h2><ul>${toc}</ul>
${groups}</body></html>`;
}

function renderOperation(path: string, method: string, op: OperationLike, resolve: Resolve): string {
  const params = (op.parameters ?? [])
    .map(
      (p) =>
        `<tr><td><code>${escapeHtml(p.name)}</code></td><td>${p.in}</td><td>${escapeHtml(typeOf(p.schema, resolve))}</td><td>${p.required ? 'yes' : ''}</td><td>${escapeHtml(p.description ?? '')}</td></tr>`,
    )
    .join('');
  const bodySchema = op.requestBody?.content?.['application/json']?.schema;
  const responses = Object.entries(op.responses ?? {})
    .map(([status, r]) => `<li><b>${escapeHtml(status)}</b> ${escapeHtml(r.description ?? '')}</li>`)
    .join('');
  const success = Object.entries(op.responses ?? {}).find(([status]) => status.startsWith('2'));
  const successSchema = success?.[1].content?.['application/json']?.schema;
  return `<section id="${slug(`${method} ${path}`)}">
<h3><span class="m ${method}">${method.toUpperCase()}</span> <code>${escapeHtml(path)}</code></h3>
${op.summary ? `<p>${escapeHtml(op.summary)}</p>` : ''}${op.description ? `<p>${escapeHtml(op.description)}</p>` : ''}
${op.security?.length ? '<p><i>Needs <code>Authorization: Bearer &lt;token&gt;</code>.</i></p>' : ''}
${params ? `<h4>Parameters</h4><table><tr><th>name</th><th>in</th><th>type</th><th>required</th><th>notes</th></tr>${params}</table>` : ''}
${bodySchema ? `<h4>Body</h4>${renderFields(bodySchema, resolve)}<h4>Example request</h4><pre>${escapeHtml(JSON.stringify(exampleOf(bodySchema, resolve, 0), null, 2))}</pre>` : ''}
${responses ? `<h4>Responses</h4><ul>${responses}</ul>` : ''}
${successSchema ? `<h4>Example response (${escapeHtml(success![0])})</h4><pre>${escapeHtml(JSON.stringify(exampleOf(successSchema, resolve, 0), null, 2))}</pre>` : ''}
</section>`;
}

type Resolve = (schema: Json | undefined) => Json;

function resolverOf(doc: OpenApiLike): Resolve {
  const schemas = doc.components?.schemas ?? {};
  return (schema) => {
    let s = schema ?? {};
    for (let hops = 0; typeof s.$ref === 'string' && hops < 10; hops++)
      s = schemas[s.$ref.replace('#/components/schemas/', '')] ?? {};
    return s;
  };
}

function typeOf(schema: Json | undefined, resolve: Resolve): string {
  const s = resolve(schema);
  if (s.enum) return s.enum.map((v: unknown) => JSON.stringify(v)).join(' | ');
  if (s.oneOf || s.anyOf) return (s.oneOf ?? s.anyOf).map((x: Json) => typeOf(x, resolve)).join(' | ');
  const type = Array.isArray(s.type) ? s.type.join(' | ') : (s.type ?? 'any');
  if (type === 'array') return `${typeOf(s.items, resolve)}[]`;
  return s.format ? `${type} (${s.format})` : type;
}

/** A table of fields; an either/or body gets one table per form. */
function renderFields(schema: Json, resolve: Resolve, depth = 0): string {
  const s = resolve(schema);
  const forms = s.oneOf ?? s.anyOf;
  if (forms && depth < MAX_DEPTH) {
    const alternatives = forms
      .map((form: Json, i: number) => `<p>Form ${i + 1}:</p>${renderFields(form, resolve, depth + 1)}`)
      .join('');
    return `${s.description ? `<p>${escapeHtml(s.description)}</p>` : ''}<p>Exactly one of these forms:</p>${alternatives}`;
  }
  if (s.type !== 'object' || !s.properties) return `<p><code>${escapeHtml(typeOf(s, resolve))}</code></p>`;
  const required = new Set<string>(s.required ?? []);
  const rows = Object.entries(s.properties as Record<string, Json>)
    .map(([name, field]) => {
      const f = resolve(field);
      const limits = [
        f.minLength !== undefined ? `≥ ${f.minLength} chars` : '',
        f.maxLength !== undefined ? `≤ ${f.maxLength} chars` : '',
        f.minimum !== undefined ? `≥ ${f.minimum}` : '',
        f.maximum !== undefined ? `≤ ${f.maximum}` : '',
        f.maxItems !== undefined ? `≤ ${f.maxItems} items` : '',
      ]
        .filter(Boolean)
        .join(', ');
      const notes = [f.description ?? '', limits].filter(Boolean).join('; ');
      return `<tr><td><code>${escapeHtml(name)}</code></td><td>${escapeHtml(typeOf(f, resolve))}</td><td>${required.has(name) ? 'yes' : ''}</td><td>${escapeHtml(notes)}</td></tr>`;
    })
    .join('');
  return `<table><tr><th>field</th><th>type</th><th>required</th><th>notes</th></tr>${rows}</table>`;
}

/** An example value: the schema's own example when it has one, else a plausible value of its type. */
function exampleOf(schema: Json | undefined, resolve: Resolve, depth: number): unknown {
  const s = resolve(schema);
  if (depth > MAX_DEPTH) return '…';
  if (s.example !== undefined) return s.example;
  if (s.enum) return s.enum[0];
  const forms = s.oneOf ?? s.anyOf;
  if (forms) return exampleOf(forms[0], resolve, depth + 1);
  const type = Array.isArray(s.type) ? s.type.find((t: string) => t !== 'null') : s.type;
  switch (type) {
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const [name, field] of Object.entries((s.properties ?? {}) as Record<string, Json>))
        out[name] = exampleOf(field, resolve, depth + 1);
      return out;
    }
    case 'array':
      return [exampleOf(s.items, resolve, depth + 1)];
    case 'integer':
      return s.minimum ?? 1;
    case 'number':
      return s.minimum ?? 1;
    case 'boolean':
      return true;
    case 'string':
      if (s.format === 'email') return 'asha@example.com';
      if (s.format === 'date-time') return '2026-01-31T18:30:00.000Z';
      if (s.format === 'date') return '2026-01-31';
      return 'string';
    default:
      return null;
  }
}
