/**
 * The operations module: every admin operation, once, and the only way the CLI
 * (src/cli/commands) and the REST API (src/http/api.ts) change or read assignments. Each
 * operation is described in operations.ts (parameters, API route), from which both derive
 * their parsing and usage. Callers pass who acts; results are plain JSON-ready objects
 * (snake_case keys, ISO times), printed by the CLI and sent by the API as they are.
 */
import type { Config } from '../config/types.js';
import { backupStore } from '../store/registry.js';
import type { Format } from './format.js';
import type { OriginalSource } from './original.js';
import type { OpsContext, Who } from './context.js';
import { doctor, repair } from './doctor.js';
import { migrate, type MigrateRequest } from './migrate.js';
import {
  type AuditRequest,
  type ListQuery,
  type SafetyRequest,
  assignByPolicy,
  assignObject,
  deleteObject,
  findObject,
  iterateObjects,
  listAudit,
  listBuckets,
  listObjects,
  moveObject,
  putObject,
} from './objects.js';
import {
  type ImportOptions,
  type StreamImportOptions,
  exportLines,
  importFile,
  importOriginal,
  importStream,
} from './transfer.js';

export type { OpsContext, Who } from './context.js';
export type { DoctorReport } from './doctor.js';
export type { MigrateRequest, MigrateResult, BatchReport } from './migrate.js';
export type {
  AssignedView,
  AuditView,
  BucketsView,
  ChangeView,
  ObjectPage,
  ObjectView,
  PutView,
  SafetyRequest,
} from './objects.js';
export type { ImportReport } from './transfer.js';
export type { BackupReport } from '../store/registry.js';
export { FORMATS, type Format } from './format.js';
export { parseOriginalUrl } from './original.js';

export class Operations {
  constructor(readonly ctx: OpsContext) {}

  /** Operations that work on the configuration alone (backup), without opening the store. */
  static withoutStore(config: Config): Operations {
    return new Operations({
      config: () => config,
      get store(): never {
        throw new Error('internal: this operation does not open the store');
      },
    });
  }

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

  /** By the policy, as a first request would; an object that has a bucket keeps it. */
  assignByPolicy(req: { kind?: string | undefined; name: string }) {
    return assignByPolicy(this.ctx, req);
  }

  /** To a named bucket, for an object that has none (audited). */
  assign(req: { kind?: string | undefined; name: string; bucket: string } & Who) {
    return assignObject(this.ctx, req);
  }

  /** Move when it has a bucket, assign explicitly when not. */
  put(req: { kind?: string | undefined; name: string; bucket: string } & Who & SafetyRequest) {
    return putObject(this.ctx, req);
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

  /** From a stream (standard input, a request body), spooled to a private file first. */
  importStream(input: NodeJS.ReadableStream, opts: StreamImportOptions) {
    return importStream(this.ctx, input, opts);
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

  /** An online copy of the store (SQLite); needs no open store. */
  backup(req: { target: string; force?: boolean | undefined }) {
    return backupStore(this.ctx.config(), req.target, { force: req.force ?? false });
  }
}
