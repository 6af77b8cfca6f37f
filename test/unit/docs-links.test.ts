/**
 * Every relative link and #anchor in the documentation lands somewhere: the file exists, and
 * the anchor is a heading of that file as GitHub names it (lower case, punctuation dropped,
 * spaces as "-", "-1", "-2" for repeats). A page may not give two headings one anchor, so
 * that no link lands on the wrong one of two "Performance" sections.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { ROOT } from '../helpers/sharder.js';

/** The pages checked: the root documents and every page under docs/. */
function pages(): string[] {
  const root = ['README.md', 'SECURITY.md', 'CONTRIBUTING.md', 'CHANGELOG.md', 'ARCHITECTURE.md'].filter((f) =>
    existsSync(join(ROOT, f)),
  );
  const docs = readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`);
  return [...root, ...docs];
}

/**
 * Pages that other work writes (generated, or another branch's) and that may not exist yet
 * in this tree: a link to one of them is reported as pending instead of failing, until it
 * exists; from then on it is checked like any other.
 */
const WRITTEN_ELSEWHERE: Record<string, string> = {
  'docs/configuration.md': 'generated from the configuration schema (npm run docs)',
  'docs/cli.md': 'generated from the command definitions (npm run docs)',
  'ARCHITECTURE.md': 'the architecture notes',
};

/** Markdown text without its fenced code blocks (their lines blanked, so line numbers stay). */
function withoutCode(text: string): string[] {
  let fence: string | null = null;
  return text.split('\n').map((line) => {
    const m = /^\s*(```+|~~~+)/.exec(line);
    if (fence === null && m) {
      fence = m[1]!;
      return '';
    }
    if (fence !== null) {
      if (line.trim().startsWith(fence)) fence = null;
      return '';
    }
    return line;
  });
}

/** GitHub's anchor for a heading's text. */
export function slug(heading: string): string {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // links and images: their text
    .replace(/<[^>]+>/g, '') // inline HTML
    .trim()
    .toLowerCase();
  return text.replace(/[^\p{L}\p{N}\p{M} _-]/gu, '').replace(/ /g, '-');
}

/** The anchors of a page, in order, and any anchor that two headings share. */
export function anchors(text: string): { all: Set<string>; repeated: string[] } {
  const seen = new Map<string, number>();
  const all = new Set<string>();
  const repeated: string[] = [];
  for (const line of withoutCode(text)) {
    const h = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    const html = [...line.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)].map((m) => m[1]!);
    for (const id of html) all.add(id);
    if (!h) continue;
    const base = slug(h[1]!);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    if (n > 0) repeated.push(base);
    all.add(n === 0 ? base : `${base}-${n}`);
  }
  return { all, repeated };
}

/** Every link target of a page outside code, with its line. */
function links(text: string): { target: string; line: number }[] {
  const out: { target: string; line: number }[] = [];
  withoutCode(text).forEach((line, i) => {
    const prose = line.replace(/`[^`]*`/g, '');
    for (const m of prose.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g))
      out.push({ target: m[1]!, line: i + 1 });
  });
  return out;
}

test('every relative link and anchor in the documentation resolves, and no page repeats an anchor', (t) => {
  const problems: string[] = [];
  const pending = new Set<string>();
  const cache = new Map<string, Set<string>>();
  const anchorsOf = (file: string): Set<string> => {
    let a = cache.get(file);
    if (a === undefined) cache.set(file, (a = anchors(readFileSync(join(ROOT, file), 'utf8')).all));
    return a;
  };
  let checked = 0;
  for (const page of pages()) {
    const text = readFileSync(join(ROOT, page), 'utf8');
    for (const r of anchors(text).repeated)
      problems.push(`${page}: two headings have the anchor #${r}: rename one, so that links land on the right one`);
    for (const { target, line } of links(text)) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto: …
      checked++;
      const hash = target.indexOf('#');
      const path = hash === -1 ? target : target.slice(0, hash);
      const anchor = hash === -1 ? null : decodeURIComponent(target.slice(hash + 1));
      const file = path === '' ? page : relative(ROOT, resolve(ROOT, dirname(page), decodeURIComponent(path)));
      if (!existsSync(join(ROOT, file))) {
        if (Object.hasOwn(WRITTEN_ELSEWHERE, file)) pending.add(file);
        else problems.push(`${page}:${line}: ${target}: no file ${file}`);
        continue;
      }
      if (anchor === null) continue;
      if (!file.endsWith('.md'))
        problems.push(`${page}:${line}: ${target}: an anchor into ${file}, which has no headings`);
      else if (!anchorsOf(file).has(anchor))
        problems.push(`${page}:${line}: ${target}: ${file} has no heading with the anchor #${anchor}`);
    }
  }
  assert.ok(checked > 50, `the links were found (${checked})`);
  assert.deepEqual(problems, []);
  for (const file of pending)
    t.diagnostic(
      `pending: ${file} does not exist yet (${WRITTEN_ELSEWHERE[file]}); links to it are checked once it does`,
    );
});

test("the anchor rules are GitHub's", () => {
  assert.equal(slug('Safe moves (hub_api)'), 'safe-moves-hub_api');
  assert.equal(slug('`workers`: all cores'), 'workers-all-cores');
  assert.equal(slug('Identity: what is accepted'), 'identity-what-is-accepted');
  assert.equal(slug('SQLite: `sharder backup`'), 'sqlite-sharder-backup');
  assert.equal(slug('Install on a VM (systemd)'), 'install-on-a-vm-systemd');
  assert.equal(slug('PostgreSQL: `pg_dump` and `pg_restore`'), 'postgresql-pg_dump-and-pg_restore');
  const { all, repeated } = anchors('# A\n## Performance\n```\n## not a heading\n```\n### Performance\n');
  assert.deepEqual([...all], ['a', 'performance', 'performance-1']);
  assert.deepEqual(repeated, ['performance']);
});
