import { execFileSync } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { Daemon, startDaemon } from '../support/daemon.ts';
import { readEvents, sandboxWithStandIn, TASK_DAEMON_ENV, waitForTask, type SseEvent } from '../support/tasks.ts';

/**
 * Stand-ins for the `claude` CLI on the sandbox's PATH (like bench/tasks.ts). The hostile one writes, as
 * fast as node can (after making 1500 files in the app dir): a 300 MiB line without a newline, a 270 kB line of multi-byte characters (cut between
 * chunks for sure), a million stream-json lines, then a result. The neighbour ticks every 100 ms until told to stop.
 */
const HOSTILE_AGENT = `#!/usr/bin/env node
const fs = require('fs');
const out = (b) => { for (let off = 0; off < b.length;) off += fs.writeSync(1, b, off); };
for (let i = 0; i < 1500; i++) fs.writeFileSync('f' + i, '');
out(Buffer.from(JSON.stringify({ type: 'system', subtype: 'init' }) + '\\n'));
const mib = Buffer.alloc(1 << 20, 'x');
for (let i = 0; i < 300; i++) out(mib);
out(Buffer.from('\\n' + JSON.stringify({ type: 'assistant', message: { content: [{ type: 'text', text: 'é€😀'.repeat(30000) }] } }) + '\\n'));
for (let b = 0; b < 1000; b++) {
  let s = '';
  for (let i = 0; i < 1000; i++) s += '{"type":"assistant","message":{"content":[{"type":"text","text":"flood ' + (b * 1000 + i) + '"}]}}\\n';
  out(Buffer.from(s));
}
out(Buffer.from(JSON.stringify({ type: 'result', subtype: 'success', is_error: false, result: 'hostile done', usage: { input_tokens: 7, output_tokens: 3 }, total_cost_usd: 0 }) + '\\n'));
`;

const TICKING_AGENT = `#!/usr/bin/env node
const fs = require('fs');
const line = (o) => fs.writeSync(1, JSON.stringify(o) + '\\n');
let i = 0;
const t = setInterval(() => {
  line({ type: 'assistant', message: { content: [{ type: 'text', text: 'tick ' + i++ }] } });
  if (fs.existsSync(process.env.HOME + '/stop-ticking') || i > 3000) {
    clearInterval(t);
    line({ type: 'result', subtype: 'success', is_error: false, result: 'ticked', usage: {}, total_cost_usd: 0 });
  }
}, 100);
`;

/** Like the hostile agent, but it holds its result back until ~/go exists: the daemon is killed meanwhile. */
const HOSTILE_WAITING_AGENT = HOSTILE_AGENT.replace(
  /out\(Buffer\.from\(JSON\.stringify\(\{ type: 'result'/,
  "while (!fs.existsSync(process.env.HOME + '/go')) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);\nout(Buffer.from(JSON.stringify({ type: 'result'",
);

/** An agent whose 150 messages are each just under the line cap: 150 MB of events to replay (more than loopback's socket buffers hold). */
const BIG_EVENTS_AGENT = `#!/usr/bin/env node
const fs = require('fs');
const text = 'y'.repeat(1_000_000);
for (let i = 0; i < 150; i++) fs.writeSync(1, JSON.stringify({ type: 'assistant', message: { content: [{ type: 'text', text: i + text }] } }) + '\\n');
fs.writeSync(1, JSON.stringify({ type: 'result', subtype: 'success', is_error: false, result: 'big done', usage: {}, total_cost_usd: 0 }) + '\\n');
`;

/** The daemon's resident memory, as the kernel counts it. */
function rssMb(): number {
  return Number(execFileSync('ps', ['-o', 'rss=', '-p', String(d.proc.pid)], { encoding: 'utf8' }).trim()) / 1024;
}

/** Counts of a task's stored events, read straight from the daemon's database. */
function storedEvents(taskId: string): { all: number; limitHit: number } {
  const db = new (process.getBuiltinModule('node:sqlite').DatabaseSync)(join(d.dataDir, 'sandboxed.db'), { readOnly: true });
  try {
    const all = Number((db.prepare('SELECT COUNT(*) AS n FROM task_events WHERE task_id = ?').get(taskId) as { n: number }).n);
    const limitHit = Number((db.prepare("SELECT COUNT(*) AS n FROM task_events WHERE task_id = ? AND type = 'truncated' AND data LIKE '%event_limit%'").get(taskId) as { n: number }).n);
    return { all, limitHit };
  } finally {
    db.close();
  }
}

const MAX_EVENTS = 10_000;
const MAX_LINE = 1 << 20;
let d: Daemon;

beforeAll(async () => {
  // One task thread (SANDBOXD_WORKER_THREADS=2 gives the task pool one): both tasks share it, the case the finding is about.
  // Room for the 150 MB replay below; the other caps are the defaults.
  d = await startDaemon({ env: { ...TASK_DAEMON_ENV, SANDBOXD_TASK_HEALTH_WAIT_S: '0', SANDBOXD_WORKER_THREADS: '2', SANDBOXD_TASK_MAX_EVENT_BYTES: String(256 << 20) } });
});
afterAll(async () => {
  await d?.cleanup();
});

type Sse = SseEvent;

/** Reads an SSE stream to its end (see readEvents for `slow` and `onEvent`). */
async function sse(path: string, opts: { onEvent?: (e: Sse) => void; slow?: boolean } = {}): Promise<Sse[]> {
  const r = await readEvents(d, path, { ...opts, timeoutMs: 240_000 });
  expect(r.status).toBe(200);
  return r.events;
}

describe('hostile task output', () => {
  it('a 300 MiB line and a million lines in one task: the neighbour task keeps streaming, /healthz answers within 1 s, the task ends done with truncated, its events are capped and replay whole', async () => {
    const hostile = await sandboxWithStandIn(d, HOSTILE_AGENT);
    const neighbour = await sandboxWithStandIn(d, TICKING_AGENT);

    const ticks: number[] = [];
    const nTask = await d.api('POST', `/v1/sandboxes/${neighbour}/tasks`, { prompt: 'tick', agent: 'claude' });
    expect(nTask.status, nTask.text).toBe(202);
    const nStream = sse(nTask.body.events_url, { onEvent: (e) => e.event === 'message' && ticks.push(Date.now()) });
    nStream.catch(() => undefined); // awaited at the end; a failure before that must not surface as an unhandled rejection
    // The neighbour is streaming before the hostile task starts.
    for (let i = 0; i < 100 && ticks.length < 5; i++) await new Promise((r) => setTimeout(r, 100));
    expect(ticks.length).toBeGreaterThanOrEqual(5);

    const t0 = Date.now();
    const hTask = await d.api('POST', `/v1/sandboxes/${hostile}/tasks`, { prompt: 'flood', agent: 'claude', timeout_s: 600 });
    expect(hTask.status, hTask.text).toBe(202);
    const hostileId = hTask.body.id as string;

    // Through the hostile phase: /healthz every ~100 ms, timed.
    let hostileDone = false;
    const healthz: number[] = [];
    const sampler = (async () => {
      while (!hostileDone) {
        const s = performance.now();
        const r = await fetch(`${d.url}/healthz`, { signal: AbortSignal.timeout(10_000) }).then((x) => x.status, () => 0);
        healthz.push(r === 200 ? performance.now() - s : Infinity);
        await new Promise((res) => setTimeout(res, 100));
      }
    })();
    const task = await waitForTask(d, hostile, hostileId, 300_000).finally(() => (hostileDone = true));
    await sampler;
    const t1 = Date.now();

    // The neighbour's events kept arriving while the hostile output was read: no long silence in that window.
    const during = [t0, ...ticks.filter((t) => t >= t0 && t <= t1), t1];
    const gaps = during.slice(1).map((t, i) => t - during[i]!);
    const maxGap = Math.max(...gaps);
    const maxHealthz = Math.max(...healthz);
    console.log(`[task-output] hostile phase ${((t1 - t0) / 1000).toFixed(1)} s; neighbour events meanwhile ${during.length - 2}, longest gap ${maxGap} ms; /healthz samples ${healthz.length}, max ${maxHealthz.toFixed(1)} ms`);
    expect(during.length - 2).toBeGreaterThan(10);
    // It prints every 100 ms: a silence of seconds means its events were held back on the way (a stalled task
    // thread, or output buffered in the sandbox before it reaches the file), which every task would suffer.
    expect(maxGap).toBeLessThan(3000);
    expect(healthz.length).toBeGreaterThan(5);
    expect(maxHealthz).toBeLessThan(1000);

    // The hostile task ended normally: its result comes from lines read long after the cap.
    expect(task, JSON.stringify(task).slice(0, 2000)).toMatchObject({ status: 'succeeded', reason: null });
    expect(task.result).toMatchObject({ message: 'hostile done', usage: { input: 7, output: 3 }, files_changed_truncated: true });
    expect(task.result.files_changed).toHaveLength(1000);

    const stored = storedEvents(hostileId).all;
    expect(stored).toBeLessThanOrEqual(MAX_EVENTS);

    // A full replay with a slow reader: every stored event, in order, exactly once, ending with done.
    const replay = await sse(`/v1/sandboxes/${hostile}/tasks/${hostileId}/events`, { slow: true });
    expect(replay.length).toBe(stored);
    expect(replay.map((e) => e.id)).toEqual(replay.map((_, i) => i + 1));
    expect(replay.at(-1)!.event).toBe('done');
    expect(replay.at(-1)!.data.result).toEqual(task.result);
    const truncated = replay.filter((e) => e.event === 'truncated');
    expect(truncated.map((e) => e.data.reason)).toEqual(['line_too_long', 'event_limit']);
    expect(truncated[0]!.data).toMatchObject({ line: 2, bytes: 300 * MAX_LINE, limit: MAX_LINE });
    expect(truncated[0]!.data.message).toContain('SANDBOXD_TASK_MAX_LINE_BYTES');
    expect(truncated[1]!.data).toMatchObject({ limit: MAX_EVENTS });
    expect(truncated[1]!.data.message).toContain('SANDBOXD_TASK_MAX_EVENTS');
    const messages = replay.filter((e) => e.event === 'message').map((e) => e.data.text as string);
    // The line of multi-byte characters arrived whole (it spans several chunks), then the flood in order up to the cap.
    expect(messages[0]).toBe('é€😀'.repeat(30000));
    expect(messages.slice(1)).toEqual(messages.slice(1).map((_, i) => `flood ${i}`));
    expect(messages.length).toBeGreaterThan(MAX_EVENTS - 20);
    // After the cap, only the daemon's own events: the checks and done.
    const after = replay.slice(replay.indexOf(truncated[1]!) + 1).map((e) => e.event);
    expect(after).toEqual(['status', 'status', 'done']);
    // The flood was stored no faster than SANDBOXD_TASK_EVENTS_PER_S (500, with a burst of one second's worth).
    const first = replay.find((e) => e.event === 'message')!;
    const spanMs = Date.parse(truncated[1]!.data.at) - Date.parse(first.data.at);
    expect(spanMs).toBeGreaterThanOrEqual(((truncated[1]!.id - first.id - 500) / 500) * 1000 * 0.95);

    // The WebSocket replay carries the same events.
    const frames: any[] = [];
    const ws = new WebSocket(`${d.url.replace('http', 'ws')}/v1/sandboxes/${hostile}/tasks/${hostileId}/events`);
    ws.on('message', (m) => frames.push(JSON.parse(String(m))));
    expect(await new Promise<number>((res) => ws.on('close', res))).toBe(1000);
    expect(frames).toEqual(replay.map((e) => e.data));

    // The neighbour ends as normal once told to.
    await d.api('POST', `/v1/sandboxes/${neighbour}/exec`, { cmd: ['touch', '/home/sandbox/stop-ticking'] });
    const nEvents = await nStream;
    expect(nEvents.at(-1)!.event).toBe('done');
    expect((await waitForTask(d, neighbour, nTask.body.id)).status).toBe('succeeded');
    expect(d.proc.exitCode).toBeNull();
  }, 420_000);

  it('kill -9 while the flood is being stored: the restarted daemon re-reads the huge file through the same caps and every event is stored once', async () => {
    const id = await sandboxWithStandIn(d, HOSTILE_WAITING_AGENT);
    const submit = await d.api('POST', `/v1/sandboxes/${id}/tasks`, { prompt: 'flood', agent: 'claude', timeout_s: 600 });
    expect(submit.status, submit.text).toBe(202);
    const taskId = submit.body.id as string;
    // Part of the flood is stored (it goes at SANDBOXD_TASK_EVENTS_PER_S): the daemon dies mid-way.
    for (let i = 0; i < 600 && storedEvents(taskId).all < 2000; i++) await new Promise((r) => setTimeout(r, 100));
    const before = storedEvents(taskId).all;
    expect(before).toBeGreaterThanOrEqual(2000);
    expect(before).toBeLessThan(MAX_EVENTS - 100);
    await d.stop(true);
    const t0 = Date.now();
    d = await new Daemon({ reuse: d }).start();
    // The re-attach reads the 300 MiB line and the million lines again from line 1, and stores the rest up to the cap.
    for (let i = 0; i < 1200 && !storedEvents(taskId).limitHit; i++) await new Promise((r) => setTimeout(r, 100));
    const reattachMs = Date.now() - t0;
    console.log(`[task-output] re-attach after kill -9 at ${before} events: the cap was reached again ${(reattachMs / 1000).toFixed(1)} s after the restart`);
    expect(storedEvents(taskId).limitHit).toBe(1);
    await d.api('POST', `/v1/sandboxes/${id}/exec`, { cmd: ['touch', '/home/sandbox/go'] });
    const task = await waitForTask(d, id, taskId, 120_000);
    expect(task, JSON.stringify(task).slice(0, 2000)).toMatchObject({ status: 'succeeded', result: { message: 'hostile done', usage: { input: 7, output: 3 } } });

    const events = await sse(`/v1/sandboxes/${id}/tasks/${taskId}/events`);
    expect(events.length).toBe(storedEvents(taskId).all);
    expect(events.length).toBeLessThanOrEqual(MAX_EVENTS);
    expect(events.map((e) => e.id)).toEqual(events.map((_, i) => i + 1));
    expect(events.filter((e) => e.event === 'truncated').map((e) => e.data.reason)).toEqual(['line_too_long', 'event_limit']);
    expect(events.filter((e) => e.event === 'status').map((e) => e.data.phase)).toEqual(['checkpoint', 'agent_running', 'build_check', 'health_check']);
    const messages = events.filter((e) => e.event === 'message').map((e) => e.data.text as string);
    expect(messages[0]).toBe('é€😀'.repeat(30000));
    // Nothing repeated, nothing skipped across the restart.
    expect(messages.slice(1)).toEqual(messages.slice(1).map((_, i) => `flood ${i}`));
    expect(messages.length).toBeGreaterThan(MAX_EVENTS - 20);
  }, 300_000);

  it('replays are paced by the client: 10 clients that stop reading a 150 MB replay leave the daemon\'s memory flat, and a reading client still gets it whole', async () => {
    const id = await sandboxWithStandIn(d, BIG_EVENTS_AGENT);
    const submit = await d.api('POST', `/v1/sandboxes/${id}/tasks`, { prompt: 'big', agent: 'claude' });
    expect(submit.status, submit.text).toBe(202);
    const task = await waitForTask(d, id, submit.body.id);
    expect(task.status, JSON.stringify(task).slice(0, 500)).toBe('succeeded');
    const path = `/v1/sandboxes/${id}/tasks/${submit.body.id}/events`;
    const before = rssMb();
    // Each asks for the replay and never reads (5 over SSE, 5 over WebSocket): without back-pressure the
    // daemon would buffer what the sockets cannot (~110 MB each).
    const stalled: Socket[] = [];
    const stalledWs: WebSocket[] = [];
    for (let i = 0; i < 5; i++) {
      const s = connect(d.port, '127.0.0.1');
      s.on('error', () => undefined);
      s.pause();
      s.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${d.port}\r\n\r\n`);
      stalled.push(s);
      const ws = new WebSocket(`${d.url.replace('http', 'ws')}${path}`);
      ws.on('error', () => undefined);
      ws.on('open', () => ws.pause());
      stalledWs.push(ws);
    }
    await new Promise((r) => setTimeout(r, 5000));
    const during = rssMb();
    console.log(`[task-output] daemon RSS ${before.toFixed(0)} MB before, ${during.toFixed(0)} MB with 10 stalled 150 MB replays (5 SSE, 5 WebSocket)`);
    expect(during - before).toBeLessThan(300);
    expect((await fetch(`${d.url}/healthz`)).status).toBe(200);
    // Hanging up mid-replay ends those streams; the next reader gets every event.
    stalled.forEach((s) => s.destroy());
    stalledWs.forEach((ws) => ws.terminate());
    const whole = await sse(path);
    expect(whole.map((e) => e.id)).toEqual(whole.map((_, i) => i + 1));
    expect(whole.filter((e) => e.event === 'message').map((e) => e.data.text)).toEqual(Array.from({ length: 150 }, (_, i) => i + 'y'.repeat(1_000_000)));
    expect(whole.at(-1)!.event).toBe('done');
  }, 180_000);
});
