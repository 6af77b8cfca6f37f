/**
 * The architecture check (ARCHITECTURE.md): every import in src/ obeys the table of parts below.
 * The table lives here, once; ARCHITECTURE.md shows it, and a test fails when the two differ.
 *
 * Imports are read with TypeScript's own parser (static imports, re-exports, `import type`,
 * `import()` types and calls), never with regular expressions, so comments and strings that
 * look like imports count for nothing.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, posix, relative } from 'node:path';
import { test } from 'node:test';
import ts from 'typescript';
import { ROOT } from '../helpers/sharder.js';

const SELF = relative(ROOT, import.meta.filename)
  .split('\\')
  .join('/');

interface Part {
  readonly name: string;
  /** Files (`src/x.ts`) and folders (`src/x/`) of this part; the longest match decides a file's part. */
  readonly paths: readonly string[];
  /** Parts this one may import besides itself and `shared`; `config:types` allows `import type` only. */
  readonly mayImport: readonly string[];
  /** Packages (npm or node:) this part must not import, not even a type from. */
  readonly forbidsPackages?: readonly string[];
  /** What the part is for, in one line (shown in ARCHITECTURE.md). */
  readonly doc: string;
}

/** I/O that a pure part never does: network servers and clients, database drivers, the YAML parser. */
const IO_PACKAGES = ['node:http', 'node:https', 'node:net', 'pg', 'better-sqlite3', 'undici', 'http-proxy-3', 'yaml'];

/**
 * The parts, with today's folder names mapped to them (`service/` counts as core until it moves
 * to core/); the target shape is /work/shared/LAYOUT.md's.
 */
const PARTS: readonly Part[] = [
  {
    name: 'shared',
    paths: ['src/errors.ts', 'src/log.ts', 'src/log-pretty.ts', 'src/version.ts'],
    mayImport: ['config types'],
    doc: 'error codes, the logger, the version: leaves that every part may import',
  },
  {
    name: 'core',
    paths: ['src/core/'],
    mayImport: ['config types', 'store interface'],
    forbidsPackages: IO_PACKAGES,
    doc: 'the decision: policy, name rules, assigner, cache, bucket set; no HTTP, no store backend, no config loader',
  },
  {
    name: 'config types',
    paths: ['src/config/types.ts'],
    mayImport: ['core', 'config:types', 'database urls:types'],
    forbidsPackages: IO_PACKAGES,
    doc: 'the validated configuration, as types',
  },
  {
    name: 'database urls',
    paths: ['src/config/postgres.ts', 'src/config/mariadb.ts'],
    mayImport: ['config types'],
    forbidsPackages: IO_PACKAGES,
    doc: 'the database URL parsers (no I/O): check-config reports their problems, the stores connect with them',
  },
  {
    name: 'config',
    paths: ['src/config/'],
    mayImport: ['core', 'config types', 'database urls'],
    forbidsPackages: ['node:http', 'node:https', 'pg', 'better-sqlite3', 'undici', 'http-proxy-3'],
    doc: 'schema, loading (file, environment, flags, secret files), pure validators, reference page',
  },
  {
    name: 'store interface',
    paths: ['src/store/types.ts'],
    mayImport: ['core', 'config types'],
    forbidsPackages: IO_PACKAGES,
    doc: 'the contract every backend keeps (the `Store` interface and its records)',
  },
  {
    name: 'store',
    paths: ['src/store/'],
    mayImport: ['core', 'config types', 'database urls', 'store interface', 'store registry'],
    forbidsPackages: ['node:http', 'node:https', 'undici', 'http-proxy-3'],
    doc: 'shared rules, the backend registry, sqlite/ and postgres/, the snapshot',
  },
  {
    name: 'store registry',
    paths: ['src/store/registry.ts', 'src/store/original.ts'],
    mayImport: ['core', 'config types', 'store interface', 'store'],
    forbidsPackages: ['node:http', 'node:https', 'undici', 'http-proxy-3'],
    doc: "the store's entry points: open the configured backend, back it up, read the original sharder's table",
  },
  {
    name: 'ops',
    paths: ['src/ops/'],
    mayImport: ['core', 'config types', 'store interface', 'store registry'],
    // No database driver either, except that import-original (ops/original.ts) reads the original
    // sharder's database, which is no store of ours.
    forbidsPackages: ['node:http', 'node:https', 'http-proxy-3'],
    doc: 'every admin operation, described once, for the API and the CLI alike; the hub API client',
  },
  {
    name: 'metrics',
    paths: ['src/metrics/'],
    mayImport: ['core', 'config types', 'store interface', 'proxy'],
    doc: 'Prometheus registry and meters; reads the counters the other parts keep',
  },
  {
    name: 'http',
    paths: ['src/http/'],
    mayImport: ['core', 'ops', 'config types', 'store interface', 'metrics'],
    doc: 'listeners, trust, identity, the answers, /auth and /shard, the admin API and control listener',
  },
  {
    name: 'control',
    paths: ['src/control/', 'src/status/', 'src/metrics/route.ts'],
    mayImport: ['http', 'ops', 'core', 'metrics', 'config types', 'store interface'],
    doc: 'routes of the control listener besides the API: /metrics, the status page',
  },
  {
    name: 'proxy',
    paths: ['src/proxy/'],
    mayImport: ['http', 'core', 'config types'],
    doc: 'proxy mode: pool, exchange, websockets, pages (http-proxy-3 passes)',
  },
  {
    name: 'nginx',
    paths: ['src/nginx/'],
    mayImport: ['config', 'config types', 'core'],
    forbidsPackages: ['node:http', 'node:https', 'pg', 'better-sqlite3', 'undici', 'http-proxy-3'],
    doc: 'renders nginx upstreams and maps from sharder.yml',
  },
  {
    name: 'cli',
    paths: ['src/cli/'],
    mayImport: ['ops', 'config', 'config types', 'store interface', 'process', 'nginx'],
    doc: 'the commands; admin commands through ops only',
  },
  {
    name: 'process',
    paths: ['src/process/', 'src/index.ts'],
    mayImport: ['*'],
    doc: 'composition root: builds the object graph from config; start, reload, stop; cluster; systemd',
  },
];

/**
 * Imports that break the table today, each to be removed.
 * An entry that no longer matches an import fails the test, so the list only shrinks.
 */
const KNOWN_VIOLATIONS: readonly { from: string; to: string; why: string }[] = [];

interface Import {
  readonly file: string;
  readonly line: number;
  readonly specifier: string;
  readonly typeOnly: boolean;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => posix.join(relative(ROOT, e.parentPath).split('\\').join('/'), e.name))
    .sort();
}

const parsed = new Map<string, Import[]>();

/** Every module a file imports, with whether the import is erased (type-only). */
function importsOf(file: string): Import[] {
  let known = parsed.get(file);
  if (known === undefined) parsed.set(file, (known = parse(file)));
  return known;
}

function parse(file: string): Import[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const found: Import[] = [];
  const add = (node: ts.Node, spec: ts.Expression | undefined, typeOnly: boolean): void => {
    if (spec === undefined || !ts.isStringLiteralLike(spec)) return;
    const line = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1;
    found.push({ file, line, specifier: spec.text, typeOnly });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) {
      const c = node.importClause;
      const named = c?.namedBindings;
      const allTypes =
        c !== undefined &&
        (c.isTypeOnly ||
          (c.name === undefined &&
            named !== undefined &&
            ts.isNamedImports(named) &&
            named.elements.length > 0 &&
            named.elements.every((e) => e.isTypeOnly)));
      add(node, node.moduleSpecifier, allTypes);
    } else if (ts.isExportDeclaration(node)) {
      add(node, node.moduleSpecifier, node.isTypeOnly);
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      add(node, node.moduleReference.expression, node.isTypeOnly);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      add(node, node.argument.literal, true);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      add(node, node.arguments[0], false);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}

function partOf(file: string): Part | undefined {
  let best: { part: Part; length: number } | undefined;
  for (const part of PARTS) {
    for (const p of part.paths) {
      const hit = p.endsWith('/') ? file.startsWith(p) : file === p;
      if (hit && (best === undefined || p.length > best.length)) best = { part, length: p.length };
    }
  }
  return best?.part;
}

/** The file a relative specifier names (`./x.js` is the source `./x.ts`). */
function target(from: string, specifier: string): string {
  return posix.normalize(posix.join(dirname(from), specifier)).replace(/\.js$/, '.ts');
}

/** The package an import names (`node:fs/promises` → `node:fs`, `@scope/x/y` → `@scope/x`). */
function packageOf(specifier: string): string {
  const parts = specifier.split('/');
  if (specifier.startsWith('@')) return parts.slice(0, 2).join('/');
  return parts[0]!;
}

function allowed(from: Part, to: Part, typeOnly: boolean): boolean {
  if (from === to || to.name === 'shared' || from.mayImport.includes('*')) return true;
  return from.mayImport.includes(to.name) || (typeOnly && from.mayImport.includes(`${to.name}:types`));
}

/** Every import that breaks the table, as "file:line imports x: rule". */
function violations(): { at: string; from: string; to: string; problem: string }[] {
  const out: { at: string; from: string; to: string; problem: string }[] = [];
  for (const file of sourceFiles('src')) {
    const from = partOf(file);
    if (from === undefined) {
      out.push({ at: file, from: file, to: '', problem: 'belongs to no part: add its folder to PARTS' });
      continue;
    }
    for (const imp of importsOf(file)) {
      const at = `${file}:${imp.line}`;
      if (!imp.specifier.startsWith('.')) {
        const pkg = packageOf(imp.specifier);
        if (from.forbidsPackages?.includes(pkg) === true) {
          out.push({ at, from: file, to: pkg, problem: `${from.name} must not import ${pkg}` });
        }
        continue;
      }
      const dest = target(file, imp.specifier);
      const to = partOf(dest);
      if (to === undefined) {
        out.push({ at, from: file, to: dest, problem: `imports ${dest}, which belongs to no part` });
      } else if (!allowed(from, to, imp.typeOnly)) {
        const kind = imp.typeOnly ? 'a type from ' : '';
        const may = [...from.mayImport, 'shared'].join(', ');
        out.push({
          at,
          from: file,
          to: dest,
          problem: `${from.name} imports ${kind}${to.name} (${dest}); ${from.name} may import ${may}`,
        });
      }
    }
  }
  return out;
}

test('every import in src/ obeys the table of parts in ARCHITECTURE.md', () => {
  const known = (v: { from: string; to: string }): boolean =>
    KNOWN_VIOLATIONS.some((k) => k.from === v.from && k.to === v.to);
  const found = violations();
  const fresh = found.filter((v) => !known(v)).map((v) => `${v.at}: ${v.problem}`);
  assert.deepEqual(fresh, [], `imports that break ARCHITECTURE.md's rules:\n  ${fresh.join('\n  ')}`);
  const stale = KNOWN_VIOLATIONS.filter((k) => !found.some((v) => v.from === k.from && v.to === k.to)).map(
    (k) => `${k.from} -> ${k.to}`,
  );
  assert.deepEqual(
    stale,
    [],
    `fixed: remove from KNOWN_VIOLATIONS in test/unit/architecture.test.ts:\n  ${stale.join('\n  ')}`,
  );
});

test('the checker sees every kind of import and tells type-only ones apart', () => {
  // This file itself: a static import, a default import and a type-only import of a package.
  const mine = importsOf(SELF);
  assert.deepEqual(
    mine.map((i) => [i.specifier, i.typeOnly]),
    [
      ['node:assert/strict', false],
      ['node:fs', false],
      ['node:path', false],
      ['node:test', false],
      ['typescript', false],
      ['../helpers/sharder.js', false],
    ],
  );
  // A file with `import type`, inline `type` names and an `import()` type (src/http/api.ts,
  // src/store/types.ts): all are found, so none can slip past the table.
  const all = sourceFiles('src').flatMap(importsOf);
  assert.ok(all.some((i) => i.typeOnly) && all.some((i) => !i.typeOnly));
  assert.ok(all.length > 300, `only ${all.length} imports found in src/`);
});

test('a wrong import is reported with its file, line and rule', () => {
  const core = PARTS.find((p) => p.name === 'core')!;
  const http = PARTS.find((p) => p.name === 'http')!;
  const cli = PARTS.find((p) => p.name === 'cli')!;
  const store = PARTS.find((p) => p.name === 'store')!;
  assert.equal(partOf('src/core/assigner.ts'), core);
  assert.equal(partOf('src/process/systemd.ts')?.name, 'process');
  assert.equal(partOf('src/store/types.ts')?.name, 'store interface');
  assert.equal(partOf('src/store/sqlite/index.ts'), store);
  assert.equal(partOf('src/config/postgres.ts')?.name, 'database urls');
  assert.equal(allowed(core, http, false), false);
  assert.equal(allowed(http, core, false), true);
  assert.equal(allowed(cli, store, false), false);
  assert.equal(
    allowed(
      cli,
      PARTS.find((p) => p.name === 'store interface')!,
      false,
    ),
    true,
  );
  const configTypes = PARTS.find((p) => p.name === 'config types')!;
  const config = PARTS.find((p) => p.name === 'config')!;
  assert.equal(allowed(configTypes, config, true), true);
  assert.equal(allowed(configTypes, config, false), false);
  assert.equal(target('src/core/buckets.ts', '../http/cookie.js'), 'src/http/cookie.ts');
  assert.equal(packageOf('node:fs/promises'), 'node:fs');
  assert.equal(packageOf('@scope/x/y'), '@scope/x');
});

/** The tables as ARCHITECTURE.md shows them, between its `parts` and `violations` markers. */
function renderTables(): Record<'parts' | 'violations', string> {
  const code = (s: string): string => `\`${s}\``;
  const rows = PARTS.map((p) => {
    const may = p.mayImport.includes('*')
      ? 'everything'
      : p.mayImport.map((m) => m.replace(':types', ' (types only)')).join(', ');
    const banned = p.forbidsPackages === undefined ? '' : p.forbidsPackages.map(code).join(' ');
    return `| ${p.name} | ${p.paths.map(code).join(' ')} | ${may || '—'} | ${banned} | ${p.doc} |`;
  });
  const known = KNOWN_VIOLATIONS.map(
    (k) => `| ${code(k.from)} (${partOf(k.from)?.name}) | ${code(k.to)} (${partOf(k.to)?.name}) | ${k.why} |`,
  );
  return {
    parts: [
      '| part | files (today) | may import (and shared) | must not import | for |',
      '| --- | --- | --- | --- | --- |',
      ...rows,
    ].join('\n'),
    violations: ['| file | imports | why it goes |', '| --- | --- | --- |', ...known].join('\n'),
  };
}

test("ARCHITECTURE.md's tables are the ones this test checks", () => {
  const doc = readFileSync(join(ROOT, 'ARCHITECTURE.md'), 'utf8');
  for (const [name, table] of Object.entries(renderTables())) {
    const m = new RegExp(`<!-- ${name}:begin[^>]*-->\\n([\\s\\S]*?)\\n<!-- ${name}:end -->`).exec(doc);
    assert.ok(m, `ARCHITECTURE.md has no <!-- ${name}:begin --> … <!-- ${name}:end --> block`);
    if (m[1] !== table) assert.fail(`ARCHITECTURE.md's ${name} table is out of date; it is now:\n${table}\n`);
  }
});
