import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSandbox, startDaemon, type Daemon } from '../support/daemon.ts';
import { fuzzListener } from '../support/fuzz-listener.ts';
import { maliciousRequests, type Outcome } from '../support/http-fuzz.ts';
import { prng } from '../support/prng.ts';

const SEED = Number(process.env.HOSTILE_SEED ?? 11);
const N = 5000;

/** The gateway's own answers carry its error envelope or one of its pages; an app's never do. */
const fromGateway = (o: Outcome) => /"request_id":"gateway"|<main><h1>/.test(o.bytes.toString('latin1'));

describe('gateway raw-socket fuzzing', () => {
  let d: Daemon;
  let pub: string;
  let priv: string;
  const host = (id: string) => `s-${id.toLowerCase()}-3000.preview.localhost`;

  beforeAll(async () => {
    // Short cut-offs so that slow and stalled clients are closed within the test's time.
    d = await startDaemon({ env: { SANDBOXD_GATEWAY_HEADERS_TIMEOUT_S: '2', SANDBOXD_GATEWAY_REQUEST_TIMEOUT_S: '3', SANDBOXD_GATEWAY_KEEPALIVE_TIMEOUT_S: '1' } });
    pub = await createSandbox(d);
    priv = (await d.api('POST', '/v1/sandboxes', { visibility: 'private' })).body.id;
  });
  afterAll(() => d?.cleanup());

  it(`survives ${N} malformed or adversarial requests to public, private and unknown previews: only 4xx, proxied answers or closed connections (seed ${SEED})`, async () => {
    const normal = async () => {
      const r = await d.gateway(host(pub), '/index.html');
      return r.status === 200 && r.body.includes('hello from the sandboxed test image');
    };
    expect(await normal()).toBe(true);
    const hosts = [host(pub), host(pub).toUpperCase(), `${host(pub)}:${d.gatewayPort}`, host(priv), host('01ARZ3NDEKTSV4RRFFQ69G5FAV'), 'nope.example', 'localhost', `s-${pub}-9.preview.localhost`];
    const scripts = maliciousRequests(prng(SEED), { hosts, paths: ['/', '/index.html', '/nope', '/index.html?a=1&b=%20', '/?token=x', '/a/../index.html'] }, N);
    // Stalled clients (slowloris, bodies that never finish) run alongside: the gateway must close each one itself.
    const { failures, stalled, fast, fastMs } = await fuzzListener(d, d.gatewayPort, scripts, {
      normal,
      fault: (o) => {
        const fiveXX = o.statuses.filter((s) => s >= 500);
        return fiveXX.length && fromGateway(o) ? `gateway answered ${fiveXX.join(',')}: ${o.bytes.toString('latin1').slice(0, 200)}` : undefined;
      },
    });
    expect(failures.slice(0, 20)).toEqual([]);
    expect(stalled).toBeGreaterThan(50);
    expect(d.proc.exitCode).toBeNull();
    expect(await normal()).toBe(true);
    expect(d.output).not.toMatch(/unhandled|uncaught|unexpected error/i);
    const metrics = (await d.api('GET', '/metrics')).text;
    expect(metrics).not.toMatch(/sandboxd_unexpected_errors_total\{where="gateway"\}/);
    // The parser's refusals are counted, so an operator sees a fuzzer at work.
    expect(metrics).toMatch(/sandboxd_gateway_client_errors_total\{status="400"\} \d+/);
    console.log(`gateway fuzz: ${fast} fast scripts in ${fastMs} ms, ${stalled} stalled ones`);
  }, 170_000);
});
