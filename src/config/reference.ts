/**
 * docs/configuration.md, rendered from the schema: one section per top-level group, one table
 * row per key. `npm run docs` writes it (scripts/docs.ts); test/unit/docs-generated.test.ts fails
 * when the page in the tree is not what this renders.
 */
import { envVariable } from './load.js';
import { type KeyRow, SCHEMA } from './schema.js';

const code = (text: string): string => `\`${text}\``;

function defaultText(r: KeyRow): string {
  if (r.defaultDoc !== undefined) return r.defaultDoc;
  if (r.default === null) return 'none';
  if (Array.isArray(r.default)) return code(`[${r.default.join(', ')}]`);
  const d = r.default;
  return code(typeof d === 'string' || typeof d === 'number' || typeof d === 'boolean' ? String(d) : JSON.stringify(d));
}

function typeText(r: KeyRow): string {
  return r.secret === true && !r.type.startsWith('secret') ? `${rangeText(r)} (secret)` : rangeText(r);
}

function rangeText(r: KeyRow): string {
  const values = r.values === undefined ? '' : `: ${r.values.map(code).join(', ')}`;
  if (r.range === undefined) return `${r.type}${values}`;
  const [min, max] = r.range;
  if (r.type === 'number') return `number > ${min}, ≤ ${max}`;
  return r.type === 'integer or auto' ? `integer ${min}–${max}, or \`auto\`` : `${r.type} ${min}–${max}`;
}

function envText(r: KeyRow): string {
  const variable = envVariable(r);
  if (variable === null) return '—';
  if (r.type === 'list') return `${code(variable)} (comma-separated)`;
  if (r.type === 'mapping' || r.type === 'list of mappings') return `${code(variable)} (YAML)`;
  return code(variable);
}

function reloadText(r: KeyRow): string {
  if (r.reload === 'live') return 'live';
  return r.restartVia === undefined ? 'restart' : `restart (logged as ${code(r.restartVia)})`;
}

/** Table cells must not break the table. */
const cell = (text: string): string => text.replaceAll('|', '\\|');

/** A key's group: its first part for nested keys (`proxy`, `kinds`), else the top-level keys. */
function groups(): Map<string, KeyRow[]> {
  const out = new Map<string, KeyRow[]>([['', []]]);
  const top = new Set(SCHEMA.filter((r) => r.path.includes('.')).map((r) => r.path.split('.')[0]!));
  for (const r of SCHEMA) {
    const first = r.path.split('.')[0]!;
    const group = top.has(first) ? first : '';
    out.set(group, [...(out.get(group) ?? []), r]);
  }
  return out;
}

export function renderConfigurationReference(): string {
  const lines = [
    '# Configuration reference',
    '',
    'Every key of `sharder.yml`, with its type, default, environment variable and whether a reload (`SIGHUP`) ' +
      'applies a change;',
    'this page is generated from `src/config/schema.ts` by `npm run docs`: edit the schema, not this page.',
    '',
    'Every key outside a list can be set from the environment: `SHARDER_` followed by the key path in capitals ' +
      'with `_`',
    'between the parts. Lists are comma-separated, booleans `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`), and',
    'mappings are YAML or JSON. `sharder serve` flags win over their variable, which wins over the file. Secrets',
    '(`secret` and `secret file` keys) are never logged or echoed in a message; give them in a file or the ' +
      'environment.',
    '"live": a reload (`SIGHUP`) applies a change at once; "restart": a reload leaves the running value in ' +
      'force and logs `reload_ignored` naming the key.',
    'In paths, `*` stands for any kind name and `[]` for every entry of a list.',
  ];
  for (const [group, rows] of groups()) {
    lines.push('', `## ${group === '' ? 'Top-level keys' : code(group)}`, '');
    lines.push('| key | type | default | environment | on change | description |', '|---|---|---|---|---|---|');
    for (const r of rows) {
      const flag = r.flag === undefined ? '' : ` (also \`sharder serve --${r.flag.name}\`)`;
      const cells = [code(r.path), typeText(r), defaultText(r), envText(r), reloadText(r), `${r.doc}${flag}`];
      lines.push(`| ${cells.map(cell).join(' | ')} |`);
    }
  }
  return `${lines.join('\n')}\n`;
}
