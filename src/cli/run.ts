#!/usr/bin/env node
/** Process entry point: runs one command and exits with its status. */
import cluster from 'node:cluster';
import { main } from './main.js';

/**
 * A cluster worker's IPC channel to the primary keeps its event loop alive (and closing it
 * makes Node exit 0): once the command is over, a worker exits with its status, so that the
 * primary sees why (2: it cannot start with this configuration).
 */
function done(code: number): void {
  process.exitCode = code;
  if (cluster.isWorker) process.exit(code);
}

main(process.argv.slice(2)).then(done, (err: unknown) => {
  process.stderr.write(`sharder: ${String(err)}\n`);
  done(1);
});
