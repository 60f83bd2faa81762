import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { AuthFailures } from '../../src/auth/failures.ts';
import { createLogger } from '../../src/log.ts';
import { Metrics } from '../../src/metrics.ts';
import { eventually, startDaemon, type Daemon } from '../support/daemon.ts';

const STRONG = 'alice-0123456789abcdef0123456789abcdef';
const SHORT = 'shorty-pass-9';
const ALICE = { authorization: `Bearer ${STRONG}` };
const LIMIT = 30;
const FLOOD = 3000;

/** Audit rows of failed authentication, straight from the daemon's database. */
function authRows(d: Daemon): { detail: string }[] {
  // Through getBuiltinModule: the test bundler does not list node:sqlite among the built-ins.
  const { DatabaseSync } = process.getBuiltinModule('node:sqlite') as typeof import('node:sqlite');
  const db = new DatabaseSync(join(d.dataDir, 'sandboxed.db'), { readOnly: true });
  try {
    return db.prepare("SELECT detail FROM audit_log WHERE action = 'auth.failed' ORDER BY seq").all() as { detail: string }[];
  } finally {
    db.close();
  }
}

/** One GET with a bad token on a keep-alive agent; answers the status and Retry-After. */
function badRequest(d: Daemon, agent: Agent, i: number): Promise<{ status: number; retryAfter: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: d.port, path: '/v1/sandboxes', agent, headers: { authorization: `Bearer guess-${i}-xxxxxxxx` } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] as string | undefined }));
    });
    req.on('error', reject);
    req.end();
  });
}

const metric = (text: string, answer: string) => Number(new RegExp(`^sandboxd_auth_failures_total\\{answer="${answer}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);

describe('failed-authentication floods', () => {
  let d: Daemon;

  beforeAll(async () => {
    d = await startDaemon({
      env: { SANDBOXD_API_AUTH_DISABLED: 'false', SANDBOXD_API_TOKENS: `alice:${STRONG}:admin,shorty:${SHORT}`, SANDBOXD_AUTH_FAILURES_PER_MIN: String(LIMIT) },
    });
  });
  afterAll(() => d?.cleanup());

  it('warns at start about a token secret shorter than 32 characters, by name and never the secret', () => {
    const warnings = d.output.split('\n').filter((l) => /shorter than 32 characters/.test(l));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain("'shorty'");
    expect(d.output).not.toContain(SHORT);
    expect(d.output).not.toContain(STRONG);
  });

  it('answers 429 with Retry-After past the limit, audits a handful of rows, counts every failure, and still takes a valid token', async () => {
    const rowsBefore = authRows(d).length;
    const agent = new Agent({ keepAlive: true, maxSockets: 32 });
    const answers: { status: number; retryAfter: string | undefined }[] = [];
    for (let i = 0; i < FLOOD; i += 100) {
      answers.push(...(await Promise.all(Array.from({ length: 100 }, (_, j) => badRequest(d, agent, i + j)))));
    }
    agent.destroy();
    const unauthorized = answers.filter((a) => a.status === 401).length;
    const limited = answers.filter((a) => a.status === 429);
    expect(unauthorized + limited.length).toBe(FLOOD);
    // Exactly LIMIT in one minute; a machine so slow that the flood spans a second minute allows one more batch.
    expect(unauthorized).toBeGreaterThanOrEqual(LIMIT);
    expect(unauthorized).toBeLessThanOrEqual(2 * LIMIT);
    expect(limited.every((a) => Number(a.retryAfter) >= 1 && Number(a.retryAfter) <= 60)).toBe(true);

    // A WebSocket upgrade from the limited address is refused the same way.
    const wsStatus = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(`${d.url.replace('http', 'ws')}/v1/sandboxes/x/terminal`, { headers: { authorization: 'Bearer nope-nope-nope' } });
      ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.once('open', () => (ws.close(), resolve(101)));
      ws.once('error', reject);
    });
    expect(wsStatus).toBe(429);

    // A valid token still works from the limited address (documented choice: shared addresses stay usable).
    const list = await d.api('GET', '/v1/sandboxes', undefined, ALICE);
    expect(list.status).toBe(200);
    const metrics = await d.api('GET', '/metrics', undefined, ALICE);
    expect(metrics.status).toBe(200);
    expect(metric(metrics.text, '401') + metric(metrics.text, '429')).toBe(FLOOD + 1);
    expect(metric(metrics.text, '429')).toBeGreaterThanOrEqual(FLOOD - 2 * LIMIT);

    const rowsAfter = authRows(d).length;
    expect(rowsAfter - rowsBefore).toBeGreaterThanOrEqual(1);
    expect(rowsAfter - rowsBefore).toBeLessThanOrEqual(3);
  });

  it('writes the rest of the minute as one row carrying the count, and lifts the limit when the minute is over', async () => {
    // The sampled row for the rest of the flood is written once its address's minute is over (sweep every 15 s).
    const rows = await eventually(async () => {
      const r = authRows(d).map((row) => JSON.parse(row.detail));
      return r.reduce((n, x) => n + Number(x.failures ?? 0), 0) === FLOOD + 1 ? r : undefined;
    }, 100_000, 1000);
    expect(rows).toBeDefined();
    expect(rows!.length).toBeLessThanOrEqual(3);
    expect(rows!.some((x) => x.failures > 1000 && x.remote === '127.0.0.1')).toBe(true);
    expect(JSON.stringify(rows)).not.toContain('guess-');
    const after = await d.api('GET', '/v1/sandboxes', undefined, { authorization: 'Bearer wrong-again-123' });
    expect(after.status).toBe(401);
  }, 120_000);

  it('tracks at most the configured number of addresses, whatever the flood rotates through', () => {
    const written: unknown[] = [];
    const failures = new AuthFailures(LIMIT, 100, { audit: { record: (e) => written.push(e) }, metrics: new Metrics(), log: createLogger('error', 'test') });
    for (let i = 0; i < 20_000; i++) failures.fail(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, { route: 'listSandboxes', requestId: `r${i}` });
    // IPv6 clients are limited by their /64: a thousand addresses of one /64 are one entry.
    for (let i = 0; i < 1000; i++) failures.fail(`2001:db8:1:2::${i.toString(16)}`, { route: 'listSandboxes', requestId: `v${i}` });
    expect(failures.tracked).toBeLessThanOrEqual(100);
    expect(failures.fail('2001:db8:1:2::ffff', { route: 'x', requestId: 'last' })).toBeGreaterThan(0); // over the limit as one client
    expect(written.length).toBeLessThanOrEqual(121);
  });
});
