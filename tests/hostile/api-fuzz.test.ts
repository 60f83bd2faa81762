import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type Daemon } from '../support/daemon.ts';
import { fuzzListener } from '../support/fuzz-listener.ts';
import { maliciousRequests } from '../support/http-fuzz.ts';
import { prng } from '../support/prng.ts';

const SEED = Number(process.env.HOSTILE_SEED ?? 13);
const N = 5000;

describe('API raw-socket fuzzing', () => {
  let d: Daemon;
  let id: string;

  beforeAll(async () => {
    // Short cut-offs so that slow and stalled clients are closed within the test's time.
    d = await startDaemon({ env: { SANDBOXD_API_HEADERS_TIMEOUT_S: '2', SANDBOXD_API_REQUEST_TIMEOUT_S: '3' } });
    id = (await d.api('POST', '/v1/sandboxes', { name: 'fuzzed' })).body.id;
  });
  afterAll(() => d?.cleanup());

  it(`survives ${N} malformed or adversarial requests over raw sockets: only 4xx, answers or closed connections, same pid (seed ${SEED})`, async () => {
    const normal = async () => (await d.api('GET', `/v1/sandboxes/${id}`)).body?.name === 'fuzzed' && (await d.api('GET', '/healthz')).text === 'ok';
    const paths = [
      '/healthz', '/readyz', '/v1/sandboxes', `/v1/sandboxes/${id}`, `/v1/sandboxes/${id.toLowerCase()}/exec`, `/v1/sandboxes/${id}/exec/ws`,
      `/v1/sandboxes/${id}/terminal?cols=80&rows=24`, `/v1/sandboxes/${id}/files?path=a.txt`, `/v1/sandboxes/${id}/archive?path=.`, `/sandbox/${id}/exec`,
      '/sandbox', `/v1/sandboxes/${id}/tasks/01ARZ3NDEKTSV4RRFFQ69G5FAV/events`, '/v1/sandboxes/%ZZ', '/v1/sandboxes?label=%', '/nope',
    ];
    const hosts = [`127.0.0.1:${d.port}`, `localhost:${d.port}`, 'localhost', 'evil.example', ''];
    const scripts = maliciousRequests(prng(SEED), { hosts, paths }, N);
    const { failures, stalled } = await fuzzListener(d, d.port, scripts, {
      normal,
      fault: (o) => {
        // /readyz answering 503 with its report is a state, not a fault: other daemons of the suite reorder the
        // host's shared iptables chains while they start and stop, which it may catch in passing.
        const readiness = /"ready":false/.test(o.bytes.toString('latin1'));
        const fiveXX = o.statuses.filter((s) => s >= 500 && !(s === 503 && readiness));
        return fiveXX.length ? `answered ${fiveXX.join(',')}: ${o.bytes.toString('latin1').slice(0, 700)}` : undefined;
      },
    });
    expect(failures.slice(0, 20)).toEqual([]);
    expect(stalled).toBeGreaterThan(50);
    expect(await normal()).toBe(true);
    expect(d.output).not.toMatch(/unhandled|uncaught|unexpected error/i);
    const metrics = (await d.api('GET', '/metrics')).text;
    expect(metrics).not.toMatch(/sandboxd_unexpected_errors_total/);
    // The parser's refusals are counted, so an operator sees a fuzzer at work.
    expect(metrics).toMatch(/sandboxd_http_client_errors_total\{listener="api",status="400"\} \d+/);
  }, 170_000);
});
