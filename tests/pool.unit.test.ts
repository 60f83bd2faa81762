import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/log.ts';
import { Metrics } from '../src/metrics.ts';
import { everyInterval, keepRunning, restartDelayMs, WorkerPool } from '../src/pool.ts';
import { Admission } from '../src/sandboxes/admission.ts';

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

/** A promise with its resolve handle, for a pass the test ends when it chooses. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => undefined;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** Polls `check` until it holds or the deadline passes (real time). */
async function until(check: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('single-flight interval passes', () => {
  it('never starts a second pass while one slower than the interval still runs, reports each skipped tick with the run time, and runs again once it ended', async () => {
    vi.useFakeTimers();
    const passes: ReturnType<typeof deferred>[] = [];
    const skipped: number[] = [];
    const timer = everyInterval(1000, () => {
      const d = deferred();
      passes.push(d);
      return d.promise;
    }, (runningMs) => skipped.push(runningMs));
    await vi.advanceTimersByTimeAsync(1000);
    expect(passes).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(3000);
    expect(passes).toHaveLength(1);
    expect(skipped).toEqual([1000, 2000, 3000]);
    passes[0]!.resolve();
    await vi.advanceTimersByTimeAsync(1000);
    expect(passes).toHaveLength(2);
    clearInterval(timer);
  });

  it('starts the next pass after one that failed or threw', async () => {
    vi.useFakeTimers();
    let calls = 0;
    const timer = everyInterval(1000, () => {
      calls++;
      if (calls === 1) throw new Error('thrown');
      return Promise.reject(new Error('rejected'));
    });
    await vi.advanceTimersByTimeAsync(3000);
    expect(calls).toBe(3);
    clearInterval(timer);
  });
});

describe('restarting a job that must not end', () => {
  it('waits 1 s before the first restart, doubling up to 30 s', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 50].map(restartDelayMs)).toEqual([1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
  });

  it('starts a job again each time it dies or returns, after a growing delay, until stopped', async () => {
    vi.useFakeTimers();
    let starts = 0;
    let stopped = false;
    const ends: { err: unknown; inMs: number }[] = [];
    keepRunning(() => {
      starts++;
      return starts === 2 ? Promise.resolve() : Promise.reject(new Error(`thread died ${starts}`));
    }, { stopped: () => stopped, onEnd: (err, inMs) => ends.push({ err, inMs }) });
    await vi.advanceTimersByTimeAsync(0);
    expect(starts).toBe(1);
    expect(ends).toEqual([{ err: new Error('thread died 1'), inMs: 1000 }]);
    await vi.advanceTimersByTimeAsync(999);
    expect(starts).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(starts).toBe(2);
    // A job that returned is restarted too (undefined: it was not an error).
    expect(ends[1]).toEqual({ err: undefined, inMs: 2000 });
    await vi.advanceTimersByTimeAsync(2000);
    expect(starts).toBe(3);
    expect(ends[2]!.inMs).toBe(4000);
    stopped = true;
    await vi.advanceTimersByTimeAsync(60_000);
    expect(starts).toBe(3);
    expect(ends).toHaveLength(3);
  });

  it('goes back to the shortest delay once a run lasted long enough to count as healthy', async () => {
    vi.useFakeTimers();
    const runs: ReturnType<typeof deferred>[] = [];
    const delays: number[] = [];
    keepRunning(() => {
      const d = deferred();
      runs.push(d);
      return d.promise;
    }, { stopped: () => false, onEnd: (_err, inMs) => delays.push(inMs), stableMs: 10_000 });
    await vi.advanceTimersByTimeAsync(0);
    runs[0]!.resolve();
    await vi.advanceTimersByTimeAsync(1000);
    runs[1]!.resolve();
    await vi.advanceTimersByTimeAsync(2000);
    expect(delays).toEqual([1000, 2000]);
    await vi.advanceTimersByTimeAsync(10_000);
    runs[2]!.resolve();
    await vi.advanceTimersByTimeAsync(0);
    expect(delays).toEqual([1000, 2000, 1000]);
  });
});

describe('the worker pool', () => {
  it('sends no API token and no preview key in any job, and restarts the event follower when its thread dies, counting it', async () => {
    const tokens = ['tok-alpha-5f1c9e2a7b', 'tok-bravo-83d0c4e6aa', 'tok-admin-c29e71b4f0'];
    const previewSecret = 'preview-key-0123456789abcdef0123456789abcdef';
    const dataDir = mkdtempSync(join(tmpdir(), 'sandboxd-pool-'));
    const config = loadConfig({
      SANDBOXD_API_AUTH_DISABLED: 'false', SANDBOXD_API_TOKENS: `a:${tokens[0]},b:${tokens[1]},root:${tokens[2]}:admin`,
      SANDBOXD_PREVIEW_SECRET: previewSecret, SANDBOXED_DATA_DIR: dataDir,
      SANDBOXD_RECONCILE_INTERVAL_S: '1', SANDBOXD_IDLE_TICK_S: '1', SANDBOXD_PRESSURE_TICK_S: '1',
    });
    const jobs: { name: string; payload: Record<string, unknown> }[] = [];
    let followerStarts = 0;
    // Stands in for the worker threads: records what each job would be sent, and makes the follower's first run die.
    vi.spyOn(Piscina.prototype, 'run').mockImplementation(async (payload: Record<string, unknown>, opts?: { name?: string | null }) => {
      const name = opts?.name ?? 'default';
      jobs.push({ name, payload });
      (payload.port as MessagePort | undefined)?.close();
      if (name === 'watchEvents' && ++followerStarts === 1) throw new Error('the worker thread exited with code 1');
      if (name === 'watchEvents') return new Promise(() => undefined);
      if (name === 'reconcile') return { checked: 0, repaired: [], orphans: [], firewallRepaired: [] };
      if (name === 'reapIdle') return [];
      if (name === 'relievePressure') return { availablePct: 50, totalBytes: 1, availableBytes: 1, band: 'normal', admissionOpen: true, stopped: [] };
      return { stdout: '', stderr: '', exit_code: 0, duration_ms: 0, timed_out: false, truncated: false };
    });
    const metrics = new Metrics();
    const pool = new WorkerPool(config, createLogger('error', 'test'), metrics);
    try {
      await pool.reconcile(true);
      pool.exec({ sandboxId: '01JAAAAAAAAAAAAAAAAAAAAAAA', spec: { cmd: ['true'], cwd: '/' }, capBytes: 1024 });
      pool.task('01JBBBBBBBBBBBBBBBBBBBBBBB', { OPENAI_API_KEY: 'sk-task-env-is-meant-for-the-worker' }, false);
      pool.startBackground(new Admission(config.pressure));
      const names = ['reconcile', 'runExec', 'runTask', 'watchEvents', 'reapIdle', 'relievePressure'];
      await until(() => names.every((n) => jobs.some((j) => j.name === n)) && followerStarts >= 2, 'every kind of job, and the follower restarted');

      for (const { name, payload } of jobs) {
        const sent = JSON.stringify(payload);
        for (const secret of [...tokens, previewSecret]) expect(sent, `${name} job`).not.toContain(secret);
        const jobConfig = payload.config as typeof config;
        expect(jobConfig.tokens, name).toEqual([]);
        expect(jobConfig.previewSecret, name).toBeUndefined();
        // Everything else the workers read is sent as configured.
        expect({ ...jobConfig, tokens: config.tokens, previewSecret: config.previewSecret }, name).toEqual(config);
      }
      expect(metrics.render([])).toMatch(/sandboxd_worker_restarts_total\{job="event_follower"\} 1\b/);
    } finally {
      await pool.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
