/**
 * The benchmark's test hub, in a process of its own (so that it does not share an event loop
 * with what is measured): the tests' hub (test/helpers/hubs.ts), printing its port.
 */
import { startHub } from '../test/helpers/hubs.js';

const hub = await startHub(null, 'hub-0');
process.stdout.write(`${hub.port}\n`);
process.on('SIGTERM', () => void hub.stop().then(() => process.exit(0)));
