import { randomBytes } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import { AppError } from '../errors.ts';
import type { ExecResult } from '../exec/protocol.ts';
import { LAUNCH_DETACHED, PROCESS_LOG_DIR, PROCESS_STATUS, SIGNAL_PID } from '../runtime/sandbox-scripts.ts';
import type { ExecSpec } from '../runtime/runtime.ts';
import type { ProcessRecord } from '../store/processes.ts';
import { execFailure } from './exec-failure.ts';
import { countRefusal, sessionLimits, takeSlot } from './limits.ts';
import { findSandbox } from './lookup.ts';
import type { RequestContext, Route } from './route.ts';
import { NoQuery } from './schemas.ts';

const LOG_TAIL_DEFAULT = 1 << 20;
const LOG_TAIL_MAX = 10 << 20;
/** What a status or launch script may answer at most (a line per process). */
const SCRIPT_OUTPUT_MAX = 1 << 20;
const KILL_GRACE_MS = 2000;
/** The exit code of READ_LOG when the log is not a regular file (a FIFO or a device put in its place). */
const NOT_A_FILE = 3;
/**
 * The end of a process's log, read only if it is a regular file (a FIFO would block the read, a device
 * never end), and under `timeout` for one swapped in between the test and the open. stderr is dropped:
 * the output is streamed raw to the client.
 */
const READ_LOG = [
  `f="${PROCESS_LOG_DIR}/$0.log"`,
  `[ -L "$f" ] && exit ${NOT_A_FILE}`,
  '[ -e "$f" ] || exit 0',
  `[ -f "$f" ] || exit ${NOT_A_FILE}`,
  'if command -v timeout >/dev/null 2>&1; then exec timeout 10 tail -c "$1" "$f" 2>/dev/null; fi',
  'exec tail -c "$1" "$f" 2>/dev/null',
].join('\n');

const ProcessView = Type.Object({
  pid: Type.Integer(),
  cmd: Type.Array(Type.String()),
  cwd: Type.String(),
  started_at: Type.String({ format: 'date-time' }),
  status: Type.Union([Type.Literal('running'), Type.Literal('exited'), Type.Literal('gone')], { description: '`gone`: ended without an exit code (killed, or the sandbox stopped).' }),
  exit_code: Type.Union([Type.Integer(), Type.Null()]),
  logs_url: Type.String(),
});
type ProcessView = typeof ProcessView.static;

const PidParam = /^[1-9]\d{0,9}$/;

/** Runs one of the sandbox-side scripts as the sandbox user (`args[0]` is the script's $0) and answers its result. */
async function runScript(ctx: RequestContext, sandboxId: string, script: string, args: string[], cwd = '/home/sandbox'): Promise<ExecResult> {
  const handle = ctx.deps.pool.exec({ sandboxId, spec: { cmd: ['/bin/sh', '-c', script, ...args], cwd }, capBytes: SCRIPT_OUTPUT_MAX, timeoutMs: 30_000 });
  try {
    return await handle.result;
  } catch (err) {
    throw execFailure(err);
  }
}

/**
 * Runs a list, logs or kill call holding one session slot of its sandbox and tenant, so a flood of them is
 * refused 429 like any session instead of filling the exec pool. The cap check counts open sessions only,
 * not background processes, so a tenant at its cap through those can still list, read and end them.
 */
async function withSlot<T>(ctx: RequestContext<any, any>, fn: () => Promise<T>): Promise<T> {
  const release = takeSlot(ctx.deps, findSandbox(ctx), 'process_control', { liveOnly: true });
  try {
    return await fn();
  } finally {
    release();
  }
}

/**
 * Streams the last `tail` bytes of a process's log to the response as the sandbox sends them, paced by the
 * client's socket (the worker holds at most its in-flight window), instead of buffering the whole tail.
 */
async function streamLog(ctx: RequestContext<any, any>, sandboxId: string, key: string, tail: number): Promise<void> {
  const { res } = ctx;
  const handle = ctx.deps.pool.exec({ sandboxId, spec: { cmd: ['/bin/sh', '-c', READ_LOG, key, String(tail)], cwd: '/home/sandbox' }, capBytes: 0, stream: 'raw', timeoutMs: 30_000 });
  let head = false;
  const writeHead = () => {
    if (head) return;
    head = true;
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
  };
  handle.onOutput((data) => {
    if (res.destroyed) return;
    writeHead();
    res.write(data, () => handle.ack(data.length));
  });
  let finished = false;
  // A client that leaves mid-log ends the read at once instead of leaving it paused in its exec slot.
  res.once('close', () => !finished && handle.abandon('KILL'));
  let r: ExecResult;
  try {
    r = await handle.result;
  } catch (err) {
    if (head) return void res.destroy();
    throw execFailure(err);
  } finally {
    finished = true;
  }
  if (!head && r.exit_code === NOT_A_FILE) {
    throw new AppError('conflict', 'the log of this process is not a regular file (something in the sandbox replaced ~/.sandboxed/processes/<key>.log): remove it, or restart the process');
  }
  writeHead();
  res.end();
}

/**
 * Starts a command in the background (`detach: true`) and answers at once with its pid. The caller holds a
 * session slot for the launch; the sandbox is asked which of its background processes still run first, so
 * they count against the caps (429 past them), and the new one is counted after.
 */
export async function startDetached(ctx: RequestContext, sandboxId: string, spec: ExecSpec, wake: boolean) {
  const rec = findSandbox(ctx);
  const limits = sessionLimits(ctx.deps);
  const running = await refreshBackground(ctx, sandboxId);
  try {
    limits.recheck(rec);
  } catch (err) {
    countRefusal(ctx.deps, err, 'process');
    throw err;
  }
  const key = randomBytes(8).toString('hex');
  const startedAt = Date.now();
  const r = await runScript(ctx, sandboxId, LAUNCH_DETACHED, [key, ...spec.cmd], spec.cwd);
  const pid = Number(r.stdout.trim());
  if (r.exit_code !== 0 || !Number.isInteger(pid) || pid <= 0) {
    throw new AppError('invalid_request', `the process could not start: ${r.stderr.trim() || `exit code ${r.exit_code}`}`, { field: 'cwd' });
  }
  const proc: ProcessRecord = { sandboxId, pid, key, cmd: spec.cmd, cwd: spec.cwd, startedAt };
  ctx.deps.store.processes.insert(proc);
  limits.setBackground(rec, running + 1);
  return { status: 202, body: { ...view(ctx, proc, 'running', null), ...(wake ? { wake } : {}) } };
}

/** Asks the sandbox how many of its recorded background processes still run, and records that for the caps. */
async function refreshBackground(ctx: RequestContext, sandboxId: string): Promise<number> {
  const states = await statuses(ctx, sandboxId, ctx.deps.store.processes.list(sandboxId));
  const running = [...states.values()].filter((s) => s.status === 'running').length;
  sessionLimits(ctx.deps).setBackground(findSandbox(ctx), running);
  return running;
}

function view(ctx: RequestContext, p: ProcessRecord, status: ProcessView['status'], exitCode: number | null): ProcessView {
  return {
    pid: p.pid, cmd: p.cmd, cwd: p.cwd, started_at: new Date(p.startedAt).toISOString(), status, exit_code: exitCode,
    logs_url: `/v1/sandboxes/${p.sandboxId}/processes/${p.pid}/logs`,
  };
}

/** Asks the sandbox which of these processes still run; a container started after a process means it is gone. */
async function statuses(ctx: RequestContext, sandboxId: string, procs: ProcessRecord[]): Promise<Map<ProcessRecord, { status: ProcessView['status']; exitCode: number | null }>> {
  const out = new Map<ProcessRecord, { status: ProcessView['status']; exitCode: number | null }>();
  for (const p of procs) out.set(p, { status: 'gone', exitCode: null });
  const live = await ctx.deps.runtime.inspect(sandboxId);
  if (!live?.running || !live.startedAt) return out;
  const containerStart = Date.parse(live.startedAt);
  const candidates = procs.filter((p) => p.startedAt >= containerStart - 1000);
  if (!candidates.length) return out;
  const r = await runScript(ctx, sandboxId, PROCESS_STATUS, ['status', ...candidates.map((p) => `${p.pid}:${p.key}`)]);
  const lines = r.stdout.trim().split('\n');
  candidates.forEach((p, i) => {
    const [, state, code] = (lines[i] ?? '').split(' ');
    if (state === 'running') out.set(p, { status: 'running', exitCode: null });
    else if (state === 'exited') out.set(p, { status: 'exited', exitCode: Number(code) });
  });
  return out;
}

function findProcess(ctx: RequestContext): { sandboxId: string; proc: ProcessRecord } {
  const { id: sandboxId } = findSandbox(ctx);
  const raw = ctx.params.pid ?? '';
  if (!PidParam.test(raw)) throw new AppError('invalid_request', `pid: '${raw.slice(0, 40)}' is not a process id`, { field: 'pid' });
  const proc = ctx.deps.store.processes.get(sandboxId, Number(raw));
  if (!proc) throw new AppError('not_found', `no background process ${raw} in this sandbox`);
  return { sandboxId, proc };
}

const LogsQuery = Type.Object({
  tail_bytes: Type.Optional(Type.Integer({ minimum: 1, maximum: LOG_TAIL_MAX, description: 'How much of the end of the log; default 1 MiB.' })),
}, { additionalProperties: false });

const tags = ['exec'];

/** Background processes started with `detach: true`: list, read logs, end. */
export const processRoutes: Route[] = [
  {
    method: 'GET', path: '/v1/sandboxes/{id}/processes', operationId: 'listProcesses', tags, summary: 'Background processes, newest first',
    query: NoQuery, response: { status: 200, schema: Type.Object({ data: Type.Array(ProcessView) }), description: 'Processes.' },
    handler: (ctx) => withSlot(ctx, async () => {
      const { id } = findSandbox(ctx);
      const procs = ctx.deps.store.processes.list(id);
      const states = await statuses(ctx, id, procs);
      sessionLimits(ctx.deps).setBackground(findSandbox(ctx), [...states.values()].filter((s) => s.status === 'running').length);
      return { status: 200, body: { data: procs.map((p) => view(ctx, p, states.get(p)!.status, states.get(p)!.exitCode)) } };
    }),
  },
  {
    method: 'GET', path: '/v1/sandboxes/{id}/processes/{pid}/logs', operationId: 'processLogs', tags,
    summary: "The end of a background process's combined stdout and stderr", query: LogsQuery,
    response: { status: 200, description: 'text/plain; the log bytes.' },
    handler: (ctx: RequestContext<unknown, { tail_bytes?: number }>) => withSlot(ctx, async () => {
      const { sandboxId, proc } = findProcess(ctx);
      const live = await ctx.deps.runtime.inspect(sandboxId);
      if (!live?.running) throw new AppError('conflict', 'the sandbox is stopped: start it to read the logs its processes left in ~/.sandboxed/processes');
      await streamLog(ctx, sandboxId, proc.key, ctx.query.tail_bytes ?? LOG_TAIL_DEFAULT);
    }),
  },
  {
    method: 'DELETE', path: '/v1/sandboxes/{id}/processes/{pid}', operationId: 'killProcess', tags,
    summary: 'End a background process and everything it started (TERM, then KILL after 2 s)', query: NoQuery,
    response: { status: 200, schema: ProcessView, description: 'The process, as it ended.' },
    handler: (ctx) => withSlot(ctx, async () => {
      const { sandboxId, proc } = findProcess(ctx);
      let state = (await statuses(ctx, sandboxId, [proc])).get(proc)!;
      if (state.status === 'running') {
        await runScript(ctx, sandboxId, SIGNAL_PID, ['signal', String(proc.pid), 'TERM']);
        const deadline = Date.now() + KILL_GRACE_MS;
        while (state.status === 'running' && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 100));
          state = (await statuses(ctx, sandboxId, [proc])).get(proc)!;
        }
        if (state.status === 'running') {
          await runScript(ctx, sandboxId, SIGNAL_PID, ['signal', String(proc.pid), 'KILL']);
          state = (await statuses(ctx, sandboxId, [proc])).get(proc)!;
        }
      }
      await refreshBackground(ctx, sandboxId).catch(() => undefined); // the count is advisory; the kill has happened
      return { status: 200, body: view(ctx, proc, state.status, state.exitCode) };
    }),
  },
];
