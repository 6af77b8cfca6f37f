#!/usr/bin/env node
/** Process entry point: runs one command and exits with its status. */
import { main } from './main.js';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`sharder: ${String(err)}\n`);
    process.exitCode = 1;
  },
);
