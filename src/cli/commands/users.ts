import type { Config } from '../../config/types.js';
import type { ObjectView } from '../../ops/index.js';
import { list } from '../../ops/operations.js';
import { EXIT_OK } from '../command.js';
import { emit, opCommand } from '../ops.js';

/** Lines of `BUCKET  ASSIGNED_AT  NAME`: the name last, since it may hold spaces. */
export function objectLines(config: Config, kind: string, items: readonly ObjectView[], header: boolean): string {
  const width = Math.max(
    6,
    ...(config.kinds.get(kind)?.buckets.map((b) => b.name.length) ?? []),
    ...items.map((o) => o.bucket.length),
  );
  const rows = items.map(
    (o) => `${o.bucket.padEnd(width)}  ${o.assigned_at}  ${o.name}${o.in_config ? '' : '  (bucket not in config)'}\n`,
  );
  return `${header ? `${'BUCKET'.padEnd(width)}  ${'ASSIGNED_AT'.padEnd(24)}  NAME\n` : ''}${rows.join('')}`;
}

export const users = opCommand(list, {
  name: 'users',
  summary: 'list the objects of a kind (all, or those of one bucket) with their buckets',
  synopsis: 'sharder users [--bucket B] [--limit N [--cursor C]] [--kind KIND] [--json]',
  async run({ req, args, io, config, ops }) {
    if (req.limit !== undefined || req.cursor !== undefined) {
      const page = await list.run(ops, req);
      if (args.values.json) io.out(`${JSON.stringify(page)}\n`);
      else {
        io.out(objectLines(config, page.kind, page.items, true));
        if (page.next_cursor !== null) io.err(`next cursor: ${page.next_cursor}\n`);
      }
      return EXIT_OK;
    }
    // All of them, streamed page by page (a JSON document is written as it goes, too).
    const { bucket } = req;
    const kind = req.kind ?? config.defaultKind;
    let first = true;
    let n = 0;
    await emit(
      io,
      args.values.json ? `{"kind":${JSON.stringify(kind)},"bucket":${JSON.stringify(bucket ?? null)},"items":[` : '',
    );
    let chunk: ObjectView[] = [];
    const flush = async (): Promise<void> => {
      if (chunk.length === 0) return;
      if (args.values.json) await emit(io, `${first ? '' : ','}${chunk.map((o) => JSON.stringify(o)).join(',')}`);
      else await emit(io, objectLines(config, kind, chunk, first));
      first = false;
      chunk = [];
    };
    for await (const o of ops.iterate({ kind: req.kind, bucket })) {
      chunk.push(o);
      n++;
      if (chunk.length === 1000) await flush();
    }
    await flush();
    if (args.values.json) await emit(io, '],"next_cursor":null}\n');
    else if (n === 0) io.err(`no objects of kind ${kind}${bucket === undefined ? '' : ` on bucket ${bucket}`}\n`);
    return EXIT_OK;
  },
});
