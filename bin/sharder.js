#!/usr/bin/env node
// The installed command. Runs the compiled JavaScript, so production never needs tsx.
//
// First, before anything is loaded that an older Node.js could crash on (the SQLite driver
// segfaults on Node 20, which lacks Node-API 10), the Node.js version is checked. This part
// is written in the JavaScript every Node.js parses (no const, arrow functions, template
// strings or static imports: a static import would load the whole program before this line
// runs), and it must agree with "engines" in package.json (test/node-version.test.ts).
var NEED = [22, 14, 0];
var have = process.versions.node.split('.').map(function (n) {
  return parseInt(n, 10);
});
var old = false;
for (var i = 0; i < NEED.length; i++) {
  if (have[i] !== NEED[i]) {
    old = have[i] < NEED[i];
    break;
  }
}
if (old) {
  process.stderr.write(
    'sharder: Node.js ' +
      NEED.join('.') +
      ' or newer is needed (supported: 22.14+, 24, 26); this is Node.js ' +
      process.version +
      ' at ' +
      process.execPath +
      '.\n' +
      'Install a supported Node.js (README.md, "Supported Node.js versions"), then reinstall the sharder with it.\n'
  );
  process.exit(2);
}

import('../dist/cli/run.js').catch(function (err) {
  // A clone where `npm run build` has not run yet (npm ci no longer builds: see "prepack").
  if (err && err.code === 'ERR_MODULE_NOT_FOUND' && /[\\/]dist[\\/]cli[\\/]run\.js'/.test(String(err.message))) {
    process.stderr.write('sharder: dist/ is missing (a clone that was never built): run `npm run build` first.\n');
    process.exit(2);
  }
  throw err;
});
