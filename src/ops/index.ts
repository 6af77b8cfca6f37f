/**
 * The operations module: every admin operation, once, used by both the CLI (src/cli/commands)
 * and the REST API (src/http/api.ts). Callers pass who acts; results are plain JSON-ready
 * objects (snake_case keys, ISO times), printed by the CLI and sent by the API as they are.
 */
import type { Format } from './format.js';
import type { OriginalSource } from './original.js';
import type { OpsContext, Who } from './context.js';
import { doctor, repair } from './doctor.js';
import { migrate, type MigrateRequest } from './migrate.js';
import {
  type AuditRequest, type ListQuery, type SafetyRequest, assignObject, deleteObject, findObject, iterateObjects, listAudit, listBuckets,
  listObjects, moveObject,
} from './objects.js';
import { type ImportOptions, exportLines, importFile, importOriginal } from './transfer.js';

export type { OpsContext, Who } from './context.js';
export type { DoctorReport } from './doctor.js';
export type { MigrateRequest, MigrateResult, BatchReport } from './migrate.js';
export type { AuditView, BucketsView, ChangeView, ObjectPage, ObjectView } from './objects.js';
export type { ImportReport } from './transfer.js';
export { FORMATS, type Format } from './format.js';
export { parseOriginalUrl } from './original.js';

export class Operations {
  constructor(readonly ctx: OpsContext) {}

  find(kind: string | undefined, name: string) {
    return findObject(this.ctx, kind, name);
  }

  list(q: ListQuery) {
    return listObjects(this.ctx, q);
  }

  iterate(q: { kind?: string | undefined; bucket?: string | undefined }) {
    return iterateObjects(this.ctx, q);
  }

  buckets(kind: string | undefined) {
    return listBuckets(this.ctx, kind);
  }

  assign(req: { kind?: string | undefined; name: string; bucket: string } & Who) {
    return assignObject(this.ctx, req);
  }

  move(req: { kind?: string | undefined; name: string; to: string } & Who & SafetyRequest) {
    return moveObject(this.ctx, req);
  }

  delete(req: { kind?: string | undefined; name: string } & Who & SafetyRequest) {
    return deleteObject(this.ctx, req);
  }

  migrate(req: MigrateRequest) {
    return migrate(this.ctx, req);
  }

  export(opts: { kind?: string | undefined; format: Format }) {
    return exportLines(this.ctx, opts);
  }

  importFile(path: string, opts: ImportOptions & { format?: Format | undefined; source?: string | undefined }) {
    return importFile(this.ctx, path, opts);
  }

  importOriginal(src: OriginalSource, opts: ImportOptions) {
    return importOriginal(this.ctx, src, opts);
  }

  doctor(kind?: string) {
    return doctor(this.ctx, kind);
  }

  repair(who: Who, kind?: string) {
    return repair(this.ctx, who, kind);
  }

  audit(q: AuditRequest) {
    return listAudit(this.ctx, q);
  }
}
