/**
 * The generated documentation pages: each is rendered from the code that is its source, so it
 * cannot drift from it. `npm run docs` writes them all; test/unit/docs-generated.test.ts fails when a
 * page in the tree differs from what it renders. A new generated page is one more entry here.
 */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { renderCliReference } from '../src/cli/reference.js';
import { renderConfigurationReference } from '../src/config/reference.js';

export interface GeneratedPage {
  /** Relative to the repository root. */
  readonly path: string;
  readonly render: () => string;
}

export const GENERATED_PAGES: readonly GeneratedPage[] = [
  { path: 'docs/configuration.md', render: renderConfigurationReference },
  { path: 'docs/cli.md', render: renderCliReference },
];

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const page of GENERATED_PAGES) {
    writeFileSync(join(REPO_ROOT, page.path), page.render());
    process.stdout.write(`wrote ${page.path}\n`);
  }
}
