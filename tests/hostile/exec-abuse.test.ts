import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openWebSocket } from '../support/ws.ts';
import { ByteBudget } from '../../src/tasks/feed.ts';
import { createSandbox, eventually, execIn, startDaemon, type Daemon } from '../support/daemon.ts';

/** Commands the daemon's exec pool carries now (running or queued), from /metrics. */
async function execSessions(d: Daemon): Promise<number> {
  const m = /^sandboxd_exec_sessions (\d+)$/m.exec((await d.api('GET', '/metrics')).text);
  return Number(m?.[1] ?? -1);
}


describe('exec abuse: control routes, control frames and task streams are bounded', () => {
  let d: Daemon;
  let wsBase: string;

  beforeAll(async () => {
    // Small caps: 2 sessions per tenant, 4 per sandbox; a pool big enough that only the caps refuse.
    d = await startDaemon({ env: { SANDBOXD_SESSIONS_PER_SANDBOX: '4', SANDBOXD_SESSIONS_PER_TENANT: '2', SANDBOXD_WORKER_THREADS: '2', SANDBOXD_EXEC_PER_THREAD: '8' } });
    wsBase = d.url.replace('http', 'ws');
  });
  afterAll(async () => {
    await d?.cleanup();
  });

  it('process log reads take a session slot (429 past the tenant cap), refuse a FIFO log at once and stream a 10 MiB tail whole', async () => {
    const id = await createSandbox(d);
    const bg = await d.api('POST', `/v1/sandboxes/${id}/exec`, { cmd: ['sh', '-c', 'head -c 10485760 /dev/zero | tr "\\0" a; sleep 600'], detach: true });
    expect(bg.status).toBe(202);
    const pid = bg.body.pid as number;
    const logs = `/v1/sandboxes/${id}/processes/${pid}/logs`;
    // The whole 10 MiB tail comes through, streamed (the background process counts, yet its tenant can read it).
    const full = await eventually(async () => {
      const r = await d.api('GET', `${logs}?tail_bytes=10485760`);
      return r.status === 200 && r.text.length === 10 << 20 ? r : undefined;
    }, 20_000, 500);
    expect(full?.text.length).toBe(10 << 20);
    expect(/^a+$/.test(full!.text)).toBe(true);

    // The sandbox swaps its log for a FIFO nobody writes: today's read blocks in its exec slot for 30 s.
    const list = (await d.api('GET', `/v1/sandboxes/${id}/processes`)).body.data as { logs_url: string }[];
    expect(list).toHaveLength(1);
    const ls = await execIn(id, ['sh', '-c', 'cd /home/sandbox/.sandboxed/processes && for f in *.log; do rm "$f" && mkfifo "$f" && chown "$(id -u):$(id -g)" "$f"; done; ls -l']);
    expect(ls.output).toMatch(/^p/m);
    const t0 = Date.now();
    const answers = await Promise.all(Array.from({ length: 8 }, () => d.api('GET', logs)));
    const elapsed = Date.now() - t0;
    const statuses = answers.map((r) => r.status).sort();
    console.log('[exec-abuse] 8 concurrent FIFO log reads', { statuses, elapsed_ms: elapsed });
    // At most the tenant cap (2) run at once: the rest are refused 429 naming the cap.
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(0);
    const refused = answers.find((r) => r.status === 429)!;
    expect(refused.body.error.message).toMatch(/SANDBOXD_SESSIONS_PER_TENANT=2/);
    // The ones that ran answered 409 (not a regular file) instead of hanging on the FIFO.
    for (const r of answers.filter((x) => x.status !== 429)) {
      expect(r.status).toBe(409);
      expect(r.body.error.message).toMatch(/not a regular file/);
    }
    expect(elapsed).toBeLessThan(20_000); // the FIFO is refused, not waited on for the 30 s exec timeout
    // The kill still works with the tenant's cap counted full by the background process and nothing held.
    expect((await d.api('DELETE', `/v1/sandboxes/${id}/processes/${pid}`)).status).toBe(200);
    expect(await eventually(async () => (await execSessions(d)) === 0, 10_000, 200)).toBe(true);
  }, 120_000);

  it('a flood of signal frames then a close ends the command at once: the hang-up and kill jump the queue', async () => {
    const id = await createSandbox(d);
    const { ws } = await openWebSocket(`${wsBase}/v1/sandboxes/${id}/exec/ws`);
    // The command ignores USR1 (inherited by sleep), so every frame is a signal to deliver, and none ends it.
    ws!.send(JSON.stringify({ cmd: ['sh', '-c', "trap '' USR1; echo ready; exec sleep 600"] }));
    await new Promise<void>((resolve) => ws!.on('message', (m) => String(m).includes('ready') && resolve()));
    const frame = JSON.stringify({ type: 'signal', signal: 'USR1' });
    for (let i = 0; i < 5000; i++) ws!.send(frame);
    for (let i = 0; i < 200; i++) ws!.send(JSON.stringify({ type: 'resize', cols: 80 + (i % 40), rows: 24 }));
    for (let i = 0; i < 100 && ws!.bufferedAmount > 0; i++) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 300));
    ws!.close();
    const t0 = Date.now();
    // Today each queued USR1 is a docker exec run one after another (minutes): the slot stays held.
    const freed = await eventually(async () => (await execSessions(d)) === 0, 15_000, 200);
    console.log('[exec-abuse] exec slot freed after 5000 USR1 frames and a close', { freed, ms: Date.now() - t0 });
    expect(freed).toBe(true);
    const ok = await d.api('POST', `/v1/sandboxes/${id}/exec`, { cmd: ['echo', 'room'] });
    expect(ok.status).toBe(200);
  }, 60_000);

  it('a task event stream takes a session slot: refused 429 once the sandbox and tenant caps are full', async () => {
    const id = await createSandbox(d);
    // The test image has no agent: the task ends failed at once, but it exists and has events to stream.
    const task = await d.api('POST', `/v1/sandboxes/${id}/tasks`, { prompt: 'hi', agent: 'claude' });
    expect(task.status).toBe(202);
    const events = `/v1/sandboxes/${id}/tasks/${task.body.id}/events`;
    expect(await eventually(async () => (await d.api('GET', `/v1/sandboxes/${id}/tasks/${task.body.id}`)).body.status !== 'running', 60_000, 500)).toBe(true);
    const open = await d.api('GET', events);
    expect(open.status).toBe(200);
    expect(open.text).toMatch(/event: done/);
    // Fill the tenant's 2 sessions with background processes: a stream now costs a third.
    for (let i = 0; i < 2; i++) expect((await d.api('POST', `/v1/sandboxes/${id}/exec`, { cmd: ['sleep', '600'], detach: true })).status).toBe(202);
    const sse = await d.api('GET', events);
    expect(sse.status).toBe(429);
    expect(sse.body.error.message).toMatch(/SANDBOXD_SESSIONS_PER_TENANT=2/);
    const ws = await openWebSocket(`${wsBase}${events}`);
    expect(ws.status).toBe(429);
    expect(ws.body).toMatch(/SANDBOXD_SESSIONS_PER_TENANT=2/);
    // Processes can still be listed and ended (they count live sessions only), which gives the slots back.
    const procs = (await d.api('GET', `/v1/sandboxes/${id}/processes`)).body.data as { pid: number }[];
    for (const p of procs) expect((await d.api('DELETE', `/v1/sandboxes/${id}/processes/${p.pid}`)).status).toBe(200);
    expect((await d.api('GET', events)).status).toBe(200);
  }, 120_000);
});

describe('exec abuse: the replay budget shared by task streams', () => {
  it('makes a stream wait for room past the budget, in arrival order, and a stopped stream leaves the queue', async () => {
    const budget = new ByteBudget(2 << 20);
    const never = new Promise<void>(() => undefined);
    const a = await budget.take(1 << 20, never);
    const b = await budget.take(1 << 20, never);
    expect(a && b).toBeTruthy();
    let stop!: () => void;
    const stopped = new Promise<void>((r) => (stop = r));
    const order: string[] = [];
    const cancelled = budget.take(1 << 20, stopped).then((r) => (order.push('cancelled'), r));
    const waiting = budget.take(1 << 20, never).then((r) => (order.push('granted'), r));
    await new Promise((r) => setTimeout(r, 50));
    expect(order).toEqual([]); // both wait: the budget is spent
    stop();
    expect(await cancelled).toBeUndefined();
    a!();
    const c = await waiting;
    expect(order).toEqual(['cancelled', 'granted']);
    // Spent again (b and c): a fifth page waits until one is given back.
    let fifth = false;
    const next = budget.take(1 << 20, never).then((r) => ((fifth = true), r));
    await new Promise((r) => setTimeout(r, 50));
    expect(fifth).toBe(false);
    c!();
    (await next)!();
    b!();
  });
});
