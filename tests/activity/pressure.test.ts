import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSandbox, eventually, startDaemon, type Daemon } from '../support/daemon.ts';

describe('memory pressure', () => {
  let d: Daemon;
  let meminfo: string;
  // A 95 GiB host: large enough that one start never moves the percentage much.
  const setAvailable = (pct: number) => writeFileSync(meminfo, `MemTotal:       100000000 kB\nMemFree:         1000 kB\nMemAvailable:   ${pct * 1000000} kB\n`);

  beforeAll(async () => {
    meminfo = join('/tmp', `sandboxd-meminfo-${process.pid}-${Date.now()}`);
    setAvailable(50);
    d = await startDaemon({ env: { SANDBOXD_MEMINFO_PATH: meminfo, SANDBOXD_PRESSURE_TICK_S: '1' } });
  });
  afterAll(() => d?.cleanup());

  const status = async (id: string) => (await d.api('GET', `/v1/sandboxes/${id}`)).body;

  it('stops the least recently active sandbox first, then refuses creates and wakes with 503 + Retry-After until memory recovers past the resume level', async () => {
    const [oldest, middle, newest] = [
      await createSandbox(d), await createSandbox(d), await createSandbox(d),
    ];
    const pinned = (await d.api('POST', '/v1/sandboxes', { idle_policy: 'always_on' })).body.id;
    for (const id of [middle, newest]) await d.api('POST', `/v1/sandboxes/${id}/exec`, { cmd: ['true'] });
    await d.api('POST', `/v1/sandboxes/${newest}/exec`, { cmd: ['true'] });

    setAvailable(13); // soft: one stop per pass, least recently active first
    expect(await eventually(async () => (await status(oldest)).status === 'stopped', 5000)).toBe(true);
    expect(await status(oldest)).toMatchObject({ reason: 'memory_pressure', last_stop_reason: 'memory_pressure' });
    expect((await status(newest)).status).toBe('running');
    expect((await d.api('POST', '/v1/sandboxes', {})).status).toBe(201); // still admitted in the soft band

    setAvailable(8); // hard: admission closes
    const refused = await eventually(async () => {
      const r = await d.api('POST', '/v1/sandboxes', {});
      return r.status === 503 ? r : undefined;
    }, 5000);
    expect(refused!.body.error).toMatchObject({ code: 'capacity', retryable: true });
    expect(refused!.headers.get('retry-after')).toBe('10');
    expect((await d.api('POST', `/v1/sandboxes/${oldest}/start`)).status).toBe(503);
    expect((await status(pinned)).status).toBe('running'); // always_on waits for the emergency band

    setAvailable(11); // between hard and resume: still refused (hysteresis)
    // The refusal quotes the latest reading: once it says 11.0%, a pass has seen the new level and kept admission closed.
    const held = await eventually(async () => {
      const r = await d.api('POST', `/v1/sandboxes/${oldest}/start`);
      return r.status !== 503 || /\(11\.0% available\)/.test(r.body.error.message) ? r : undefined;
    }, 5000);
    expect(held?.status).toBe(503);
    expect(held!.body.error.message).toContain('(11.0% available)');

    setAvailable(60);
    expect(await eventually(async () => (await d.api('POST', `/v1/sandboxes/${oldest}/start`)).status === 200, 5000)).toBe(true);
  }, 60_000);

  it('in the emergency band stops the largest sandbox by real memory use, even an always_on one', async () => {
    const small = (await d.api('POST', '/v1/sandboxes', { idle_policy: 'always_on' })).body.id;
    const big = (await d.api('POST', '/v1/sandboxes', { idle_policy: 'always_on' })).body.id;
    // 150 MB in its tmpfs /tmp: memory the sandbox holds for as long as the file is there, unlike a pipe's buffers.
    const fill = await d.api('POST', `/v1/sandboxes/${big}/exec`, { cmd: ['dd', 'if=/dev/zero', 'of=/tmp/fill', 'bs=1M', 'count=150'] });
    expect(fill.body.exit_code, fill.text).toBe(0);
    setAvailable(3);
    expect(await eventually(async () => (await status(big)).status === 'stopped', 8000)).toBe(true);
    setAvailable(60);
    expect((await status(big)).reason).toBe('memory_pressure');
    expect((await status(small)).status).toBe('running');
  }, 60_000);
});

describe('predictive admission', () => {
  let d: Daemon;
  let meminfo: string;

  beforeAll(async () => {
    meminfo = join('/tmp', `sandboxd-meminfo-adm-${process.pid}-${Date.now()}`);
    // ~977 MiB in all, 30% (~293 MiB) available: above every band.
    writeFileSync(meminfo, 'MemTotal:       1000000 kB\nMemAvailable:    300000 kB\n');
    d = await startDaemon({ env: { SANDBOXD_MEMINFO_PATH: meminfo, SANDBOXD_PRESSURE_TICK_S: '1' } });
  });
  afterAll(() => d?.cleanup());

  it('refuses a create whose expected footprint would take memory under the floor, and admits a smaller one', async () => {
    // Until the first reading every start is admitted (nothing is known yet): ask until one has been taken.
    const big = await eventually(async () => {
      const r = await d.api('POST', '/v1/sandboxes', { resources: { memory_mb: 256 } });
      return r.status === 503 ? r : undefined;
    }, 5000);
    expect(big?.status).toBe(503);
    expect(big!.body.error.message).toMatch(/would leave -?\d+\.\d% of memory available, under the 10% floor/);
    expect(big!.headers.get('retry-after')).toBe('10');
    const small = await d.api('POST', '/v1/sandboxes', { resources: { memory_mb: 64 } });
    expect(small.status).toBe(201);
  });
});
