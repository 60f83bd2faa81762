import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { eventually, startDaemon, type Daemon } from '../support/daemon.ts';

describe('idle reaper', () => {
  let d: Daemon;
  beforeAll(async () => (d = await startDaemon({ env: { SANDBOXD_IDLE_TICK_S: '1' } })));
  afterAll(() => d?.cleanup());

  it('stops an untouched sandbox with reason idle, but not one held by a terminal, always_on, or a keepalive; /activity says why', async () => {
    const create = async (body: object) => (await d.api('POST', '/v1/sandboxes', { idle_timeout_s: 10, ...body })).body.id as string;
    const [idle, terminal, alwaysOn, kept] = [await create({}), await create({}), await create({ idle_policy: 'always_on' }), await create({})];
    await d.api('POST', `/v1/sandboxes/${kept}/keepalive`, { seconds: 600 });
    const ws = new WebSocket(`${d.url.replace('http', 'ws')}/v1/sandboxes/${terminal}/terminal`);
    await new Promise((r) => ws.once('open', r));

    const explain = async (id: string) => (await d.api('GET', `/v1/sandboxes/${id}/activity`)).body;
    expect((await explain(idle)).explanation).toMatch(/active \d+ s ago; idle timeout is 10 s/);
    expect((await explain(terminal)).explanation).toMatch(/held awake by 1 open lease\(s\): terminal/);
    expect((await explain(alwaysOn))).toMatchObject({ explanation: 'idle_policy is always_on', idle_deadline: null, will_stop_when_idle: false });
    expect((await explain(kept)).explanation).toMatch(/^keepalive until /);
    expect(Object.keys((await explain(kept)).last_activity)).toContain('keepalive');

    // Every sandbox was last active by now: two reaper ticks past the timeout, each has had its pass.
    const allIdleBy = Date.now() + 10_000 + 2_000;
    const status = async (id: string) => (await d.api('GET', `/v1/sandboxes/${id}`)).body;
    expect(await eventually(async () => Date.now() >= allIdleBy && (await status(idle)).status === 'stopped', 20_000, 250)).toBe(true);
    expect(await status(idle)).toMatchObject({ status: 'stopped', reason: 'idle', last_stop_reason: 'idle' });
    expect((await status(terminal)).status).toBe('running');
    expect((await status(alwaysOn)).status).toBe('running');
    expect((await status(kept)).status).toBe('running');
    expect((await explain(idle)).explanation).toBe('not running (stopped)');

    // Closing the terminal releases its lease: the sandbox then sleeps like any other.
    ws.close();
    expect(await eventually(async () => (await status(terminal)).status === 'stopped', 20_000, 250)).toBe(true);
  }, 60_000);
});
