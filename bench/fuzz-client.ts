import { maliciousRequests, runAll } from '../tests/support/http-fuzz.ts';
import { prng } from '../tests/support/prng.ts';

/**
 * A fuzzing client in a process of its own (so the process that measures is not the one that floods):
 * sends seeded malformed requests to 127.0.0.1:<port>, 50 at a time, until <seconds> have passed, then
 * prints how many it sent. Usage: node bench/fuzz-client.ts <port> <seconds> <seed> <hosts,...> <paths,...>
 */
const [port, seconds, seed, hosts, paths] = process.argv.slice(2);
const end = Date.now() + Number(seconds) * 1000;
const random = prng(Number(seed));
let sent = 0;
while (Date.now() < end) {
  const scripts = maliciousRequests(random, { hosts: hosts!.split(','), paths: paths!.split(',') }, 200).filter((s) => !s.stalls);
  await runAll(Number(port), scripts, 50, { quietMs: 50, maxMs: 3000 });
  sent += scripts.length;
}
process.stdout.write(`${sent}\n`);
