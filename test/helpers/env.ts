/**
 * Declared skips. A suite that needs an outside server (postgres, nginx, chromium) asks
 * `needs(name, reasonIfMissing)`: it returns a skip reason for node:test, or undefined when the
 * thing is there. When SHARDER_TEST_REQUIRE names it (CI sets postgres,nginx,chromium), a
 * missing one is a failure instead of a skip.
 */
export type Requirement = 'postgres' | 'mariadb' | 'nginx' | 'chromium' | 'systemd' | 'old-node';

export function required(name: Requirement): boolean {
  return (process.env.SHARDER_TEST_REQUIRE ?? '')
    .split(',')
    .map((s) => s.trim())
    .includes(name);
}

/** `missing` is the reason it is unavailable, or undefined when it is available. */
export function needs(name: Requirement, missing: string | undefined): string | undefined {
  if (missing === undefined) return undefined;
  if (required(name)) throw new Error(`SHARDER_TEST_REQUIRE includes ${name}, but ${missing}`);
  return `${name} unavailable: ${missing}`;
}
