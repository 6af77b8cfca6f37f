/** Library entry: what embedding code and the test suite use. */
export { chooseBucket, type BucketPolicyInput, type BucketState } from './core/policy.js';
export { loadConfig, readConfigFile } from './config/load.js';
export { validateConfig } from './config/validate.js';
export type { Config } from './config/types.js';
export * from './errors.js';
export { Sharder } from './process/sharder.js';
export { openStore } from './store/registry.js';
export { SqliteStore } from './store/sqlite/index.js';
export { PostgresStore } from './store/postgres/index.js';
export type { Store } from './store/types.js';
export { Operations, type OpsContext } from './ops/index.js';
