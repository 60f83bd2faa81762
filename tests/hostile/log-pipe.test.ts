import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type Daemon } from '../support/daemon.ts';

/** CPU seconds (user + system) the process has used so far, from /proc. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** The status of one GET / to the gateway with this Host. */
function previewStatus(port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', headers: { host } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

let d: Daemon;
beforeAll(async () => {
  d = await startDaemon();
}, 60_000);
afterAll(async () => d?.cleanup());

describe('a daemon whose log pipe closes', () => {
  it('keeps serving, never loops on the write error, and stays idle', async () => {
    const pid = d.proc.pid!;
    // The reader of the daemon's stderr goes away, as when a log collector dies.
    d.proc.stderr!.destroy();
    // A warning to log: a preview of a port nothing listens on (502, logged as a failed preview request).
    const created = await d.api('POST', '/v1/sandboxes', { ports: [3000, 3001] });
    expect(created.status).toBe(201);
    const host = `s-${String(created.body.id).toLowerCase()}-3001.preview.localhost`;
    for (let i = 0; i < 3; i++) expect(await previewStatus(d.gatewayPort, host)).toBe(502);
    const before = cpuSeconds(pid);
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, 4000));
    const used = cpuSeconds(pid) - before;
    const wall = (Date.now() - t0) / 1000;
    expect((await d.api('GET', '/healthz')).status).toBe(200);
    expect(d.proc.pid).toBe(pid);
    expect(d.proc.exitCode).toBeNull();
    // The write error never reached the last-resort handler (which would log it, and fail again, for ever).
    const metrics = (await d.api('GET', '/metrics')).text;
    expect(metrics).not.toMatch(/sandboxd_unexpected_errors_total\{where="uncaught_exception"\}/);
    // An idle daemon uses a few per cent of a core; the loop this guards against used all of one.
    expect(used / wall).toBeLessThan(0.3);
  }, 60_000);
});
