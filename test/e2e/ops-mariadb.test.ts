/**
 * The operations scenarios of ops.test.ts and transfer.test.ts (helpers/ops-suite.ts) on a
 * real MariaDB (helpers/mariadb.ts): migrations of a bucket, export → delete the database →
 * import byte for byte, conflicts, doctor and repair, audit; and an export of SQLite imported
 * into MariaDB exporting the same bytes.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { parseOriginalUrl } from '../../src/ops/index.js';
import { validateConfig } from '../../src/config/validate.js';
import type { MariadbTestHandle } from '../../src/store/mariadb/index.js';
import { openStore } from '../../src/store/registry.js';
import { testHandle } from '../../src/store/test-hook.js';
import {
  ORIGINAL_ROWS,
  expectOriginalImported,
  expectOriginalStored,
  runOpsSuite,
  runSqliteAgreement,
  runTransferSuite,
  twoKinds,
} from '../helpers/ops-suite.js';
import { opsFixture, who, type OpsBackend } from '../helpers/ops.js';
import { MARIADB_SKIP, freshMariadb, stopSharedMariadb } from '../helpers/mariadb.js';

after(stopSharedMariadb);

const MARIADB_OPS: OpsBackend = {
  name: 'mariadb',
  skip: MARIADB_SKIP,
  async open(t) {
    const { url, name, server } = await freshMariadb(t);
    const store = await openStore(
      validateConfig({ database: url, kinds: { hub: { buckets: [{ name: 'a' }] } } }, 'test.yml'),
    );
    t.after(() => store.close());
    const pool = testHandle<MariadbTestHandle>(store).pool;
    return {
      store,
      sql: async (text) => void (await pool.query(text)),
      async seed(kind, bucket, n, prefix = 'u', start = 0) {
        // As helpers/ops.ts seeds SQLite: zero-padded names, assigned_at 1.7e12 + i ms
        // (seq_* is MariaDB's SEQUENCE engine).
        await pool.query(
          `INSERT INTO assignments (kind, name, bucket, assigned_at)
           SELECT ?, CONCAT(?, LPAD(seq, GREATEST(6, LENGTH(seq)), '0')), ?, 1700000000000 + seq
           FROM seq_${start}_to_${start + n - 1}`,
          [kind, prefix, bucket],
        );
      },
      async destroy() {
        await store.close();
        await server.admin(`DROP DATABASE \`${name}\``);
      },
    };
  },
};

runOpsSuite(MARIADB_OPS);
runTransferSuite(MARIADB_OPS);

runSqliteAgreement(MARIADB_OPS);

describe('import-original from MariaDB', { skip: MARIADB_SKIP }, () => {
  test("the original's shard table in MariaDB imports like the SQLite one; errors never show the password", async (t) => {
    const { url, server } = await freshMariadb(t);
    const name = new URL(url).pathname.slice(1);
    await server.admin(
      `CREATE TABLE \`${name}\`.shard (id INT AUTO_INCREMENT PRIMARY KEY, kind VARCHAR(256), bucket ` +
        'VARCHAR(256), name VARCHAR(256))',
    );
    for (const r of ORIGINAL_ROWS)
      await server.admin(`INSERT INTO \`${name}\`.shard (kind, bucket, name) VALUES (?, ?, ?)`, r);
    const f = opsFixture(t, twoKinds);
    // SQLAlchemy's spelling, as the original's configuration has it.
    const r = await f.ops.importOriginal(parseOriginalUrl(url.replace('mysql://', 'mysql+pymysql://')), who);
    expectOriginalImported(r);
    await expectOriginalStored(f.ops);
    await assert.rejects(f.ops.importOriginal(parseOriginalUrl(url.replace(/\/[^/]*$/, '/mysql')), who), {
      code: 'SHARD_ERR_NOT_ORIGINAL',
    });
    const err = await f.ops
      .importOriginal(parseOriginalUrl(`mysql://nobody:${server.password}x@127.0.0.1:1/x`), who)
      .catch((e: Error & { code: string }) => e);
    assert.equal((err as { code?: string }).code, 'SHARD_ERR_SOURCE_UNAVAILABLE');
    assert.ok(!(err as Error).message.includes(server.password), (err as Error).message);
  });
});
