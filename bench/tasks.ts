import { spawn } from 'node:child_process';
import { docker, startDaemon, type Daemon } from '../tests/support/daemon.ts';
import { TASK_DAEMON_ENV } from '../tests/support/tasks.ts';
import { drainStream } from './exec.ts';
import { ratio, summarize, type BenchSection } from './stats.ts';

/**
 * A stand-in for the `claude` CLI that prints Claude Code's stream-json lines at a steady pace, each
 * stamped with the time it was written, so the delay to a client can be read off each line. (The real CLIs
 * spend their time waiting for the model; what is measured here is our path from their output to a client.)
 */
const FAKE_AGENT = `#!/usr/bin/env node
const fs = require('fs');
const n = Number(process.env.BENCH_LINES), every = Number(process.env.BENCH_EVERY_MS);
const line = (o) => fs.writeSync(1, JSON.stringify(o) + '\\n');
line({ type: 'system', subtype: 'init' });
let i = 0;
const t = setInterval(() => {
  line({ type: 'assistant', message: { content: [{ type: 'text', text: 't=' + (performance.timeOrigin + performance.now()).toFixed(3) + ' i=' + i }] } });
  if (++i >= n) { clearInterval(t); line({ type: 'result', subtype: 'success', is_error: false, result: 'ok', usage: {}, total_cost_usd: 0 }); }
}, every);
`;

const stampOf = (text: string) => Number(/t=([\d.]+)/.exec(text)?.[1]);
/** Now, in milliseconds since the epoch with sub-millisecond precision (the agent stamps lines the same way). */
const now = () => performance.timeOrigin + performance.now();

/** Reads a task's SSE stream to its end, recording each message's delay from the line's stamp to its arrival here. */
async function sseDelays(d: Daemon, path: string, out: number[]): Promise<void> {
  const r = await fetch(`${d.url}${path}`);
  const reader = r.body!.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    const at = now();
    buf += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buf.indexOf('\n\n')) >= 0) {
      const frame = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      const data = frame.split('\n').find((l) => l.startsWith('data: '));
      if (!data || !frame.includes('event: message')) continue;
      const stamp = stampOf(String((JSON.parse(data.slice(6)) as { text: string }).text));
      if (stamp) out.push(at - stamp);
    }
  }
}

/** The baseline reader: `tail -f` of the same output file through a raw Docker exec, delays recorded the same way. */
async function rawTailDelays(sandboxId: string, file: string, lines: number, out: number[]): Promise<void> {
  const exec = await docker.getContainer(`s-${sandboxId}`).exec({
    Cmd: ['sh', '-c', 'until [ -f "$0" ]; do sleep 0.01; done; exec tail -n +1 -f "$0"', file], User: '1000:1000', Tty: true, AttachStdout: true, AttachStderr: true,
  });
  const stream = await exec.start({ hijack: true, stdin: false, Tty: true });
  let buf = '';
  let seen = 0;
  await new Promise<void>((resolve) => {
    stream.on('data', (chunk: Buffer) => {
      const at = now();
      buf += chunk.toString('utf8');
      const parts = buf.split('\n');
      buf = parts.pop() ?? '';
      for (const p of parts) {
        const stamp = stampOf(p);
        if (!stamp) continue;
        out.push(at - stamp);
        if (++seen >= lines) {
          stream.destroy();
          return resolve();
        }
      }
    });
    stream.on('close', () => resolve());
  });
}

/** /healthz latencies from a separate process (so this one's SSE readers do not skew them), for `ms`. */
function healthzFromChild(base: string, ms: number): Promise<number[]> {
  const script = `const end = Date.now() + ${ms}; const out = [];
    (async () => { while (Date.now() < end) { const t = performance.now(); await (await fetch('${base}/healthz')).text(); out.push(performance.now() - t); }
    process.stdout.write(JSON.stringify(out)); })();`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    child.stdout.on('data', (c) => (text += c));
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(text) as number[]) : reject(new Error(`healthz sampler exited ${code}`))));
  });
}

/**
 * Event latency: from an agent's output line to an SSE client, with `tasks` tasks running at once, against
 * a raw `docker exec tail -f` of the same file; and /healthz while they run, against idle. A second round
 * adds `streams` flooding SSE execs.
 */
export async function benchTasks(opts: { tasks: number; lines: number; everyMs: number; streams: number }): Promise<BenchSection> {
  const d = await startDaemon({ env: { ...TASK_DAEMON_ENV, SANDBOXD_DEFAULT_MEMORY_MB: '512', SANDBOXD_TASK_HEALTH_WAIT_S: '0' } });
  try {
    const ids: string[] = [];
    for (let i = 0; i < opts.tasks; i++) {
      const r = await d.api('POST', '/v1/sandboxes', { env: { PATH: '/home/sandbox/bin:/usr/local/bin:/usr/bin:/bin', BENCH_LINES: String(opts.lines), BENCH_EVERY_MS: String(opts.everyMs) } });
      if (r.status !== 201) throw new Error(`create failed: ${r.text}`);
      ids.push(r.body.id);
      await d.api('POST', `/v1/sandboxes/${r.body.id}/exec`, { cmd: ['sh', '-c', 'mkdir -p ~/bin && cat > ~/bin/claude && chmod +x ~/bin/claude'], stdin: FAKE_AGENT });
    }
    const idle = await healthzFromChild(d.url, 3000);
    const runMs = opts.lines * opts.everyMs;
    /** One round: every sandbox runs a task; delays through the API and through the raw readers, and /healthz meanwhile. */
    const round = async () => {
      const ours: number[] = [];
      const raw: number[] = [];
      const loaded = healthzFromChild(d.url, runMs);
      const t0 = Date.now();
      await Promise.all(ids.map(async (id) => {
        const task = await d.api('POST', `/v1/sandboxes/${id}/tasks`, { prompt: 'bench', agent: 'claude' });
        if (task.status !== 202) throw new Error(`task submit failed: ${task.text}`);
        await Promise.all([
          sseDelays(d, task.body.events_url, ours),
          rawTailDelays(id, `/home/sandbox/.sandboxed/tasks/${task.body.id}/out.jsonl`, opts.lines, raw),
        ]);
        const done = await d.api('GET', `/v1/sandboxes/${id}/tasks/${task.body.id}`);
        if (done.body.status !== 'succeeded') throw new Error(`a bench task ended ${done.body.status}: ${done.text}`);
      }));
      return { ours, raw, wall: Date.now() - t0, healthz: summarize(await loaded) };
    };
    const quiet = await round();
    // Again, while a further sandbox streams `opts.streams` SSE execs as fast as it can to separate curl processes.
    const flooder = (await d.api('POST', '/v1/sandboxes', {})).body.id as string;
    const window = Math.ceil(runMs / 1000) + 8;
    const flood = { cmd: ['sh', '-c', 'cat /dev/zero | tr "\\0" a'], timeout_s: window + 30 };
    const streams = Array.from({ length: opts.streams }, () => drainStream(`${d.url}/v1/sandboxes/${flooder}/exec`, flood, window));
    await new Promise((r) => setTimeout(r, 1000));
    const loud = await round();
    const relayed = (await Promise.all(streams)).reduce((a, b) => a + b, 0);
    // Stop every sandbox (the floods, the raw `tail -f` readers) before cleanup: Docker 20.10 can leave a
    // stale network endpoint behind when a container is force-removed with execs still running in it.
    await Promise.all([...ids, flooder].map((id) => d.api('POST', `/v1/sandboxes/${id}/stop`)));
    const hzIdle = summarize(idle);
    const events = summarize(quiet.ours);
    const baseline = summarize(quiet.raw);
    const loudEvents = summarize(loud.ours);
    const loudBaseline = summarize(loud.raw);
    return {
      title: 'Agent task events',
      rows: [
        { figure: `agent output line → SSE client, ${opts.tasks} tasks at once`, value: events, baseline: 'the same line → a raw `docker exec tail -f` of the output file', baselineValue: baseline, ratio: ratio(events, baseline) },
        { figure: `GET /healthz while ${opts.tasks} tasks stream events`, value: quiet.healthz, baseline: 'GET /healthz idle, same daemon', baselineValue: hzIdle, ratio: ratio(quiet.healthz, hzIdle) },
        { figure: `agent output line → SSE client, ${opts.tasks} tasks and ${opts.streams} flooding SSE execs`, value: loudEvents, baseline: 'the same line → a raw `docker exec tail -f` reader', baselineValue: loudBaseline, ratio: ratio(loudEvents, loudBaseline) },
        { figure: `GET /healthz while ${opts.tasks} tasks stream events and ${opts.streams} SSE execs flood`, value: loud.healthz, baseline: 'GET /healthz idle, same daemon', baselineValue: hzIdle, ratio: ratio(loud.healthz, hzIdle) },
      ],
      notes: [
        `${opts.tasks} tasks per round, each an agent printing ${opts.lines} stream-json lines ${opts.everyMs} ms apart (a stand-in for the \`claude\` CLI on the sandbox's PATH: the real CLIs wait on the model); ${quiet.ours.length} + ${loud.ours.length} events timed through the API, ${quiet.raw.length} + ${loud.raw.length} lines through the raw readers; rounds took ${(quiet.wall / 1000).toFixed(1)} s and ${(loud.wall / 1000).toFixed(1)} s.`,
        `Second round: ${opts.streams} \`curl -N\` processes read SSE execs printing as fast as they can, in one sandbox at the default output pace of 4 MiB/s (${(relayed / 1e6).toFixed(0)} MB relayed; the Exec section shows /healthz with no pace).`,
        'Each event is committed to SQLite before it is sent; the path is agent → file → `tail -f` in a Docker exec → worker thread → SQLite → main thread → SSE.',
        '/healthz is sampled back to back from a separate process, 3 s idle and for the length of each round.',
      ],
    };
  } finally {
    await d.cleanup();
  }
}
