import { Type } from '@sinclair/typebox';
import { AppError } from '../errors.ts';
import { execFailure } from '../exec/failure.ts';
import type { ExecResult } from '../exec/protocol.ts';
import type { ProcessRecord } from '../model/process.ts';
import type { SandboxRecord } from '../model/sandbox.ts';
import { LOG_NOT_A_FILE, type ProcessState } from '../processes/service.ts';
import { findSandbox } from './lookup.ts';
import type { RequestContext, Route } from './route.ts';
import { NoQuery } from './schemas.ts';

const LOG_TAIL_DEFAULT = 1 << 20;
const LOG_TAIL_MAX = 10 << 20;

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

/**
 * Runs a list, logs or kill call holding one session slot of its sandbox and tenant, so a flood of them is
 * refused 429 like any session instead of filling the exec pool. The cap check counts open sessions only,
 * not background processes, so a tenant at its cap through those can still list, read and end them.
 */
async function withSlot<T>(ctx: RequestContext<any, any>, fn: () => Promise<T>): Promise<T> {
  const release = ctx.deps.sessions.take(findSandbox(ctx), 'process_control', { liveOnly: true });
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
async function streamLog(ctx: RequestContext<any, any>, rec: SandboxRecord, proc: ProcessRecord, tail: number): Promise<void> {
  const { res } = ctx;
  const handle = await ctx.deps.processes.log(rec, proc, tail);
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
  if (!head && r.exit_code === LOG_NOT_A_FILE) {
    throw new AppError('conflict', 'the log of this process is not a regular file (something in the sandbox replaced ~/.sandboxed/processes/<key>.log): remove it, or restart the process');
  }
  writeHead();
  res.end();
}

/** The API's view of a background process. */
export function processView(p: ProcessRecord, state: ProcessState): ProcessView {
  return {
    pid: p.pid, cmd: p.cmd, cwd: p.cwd, started_at: new Date(p.startedAt).toISOString(), status: state.status, exit_code: state.exitCode,
    logs_url: `/v1/sandboxes/${p.sandboxId}/processes/${p.pid}/logs`,
  };
}

function findProcess(ctx: RequestContext): { rec: SandboxRecord; proc: ProcessRecord } {
  const rec = findSandbox(ctx);
  const raw = ctx.params.pid ?? '';
  if (!PidParam.test(raw)) throw new AppError('invalid_request', `pid: '${raw.slice(0, 40)}' is not a process id`, { field: 'pid' });
  return { rec, proc: ctx.deps.processes.find(rec, Number(raw)) };
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
      const listed = await ctx.deps.processes.list(findSandbox(ctx));
      return { status: 200, body: { data: listed.map(({ proc, state }) => processView(proc, state)) } };
    }),
  },
  {
    method: 'GET', path: '/v1/sandboxes/{id}/processes/{pid}/logs', operationId: 'processLogs', tags,
    summary: "The end of a background process's combined stdout and stderr", query: LogsQuery,
    response: { status: 200, description: 'text/plain; the log bytes.' },
    handler: (ctx: RequestContext<unknown, { tail_bytes?: number }>) => withSlot(ctx, async () => {
      const { rec, proc } = findProcess(ctx);
      await streamLog(ctx, rec, proc, ctx.query.tail_bytes ?? LOG_TAIL_DEFAULT);
    }),
  },
  {
    method: 'DELETE', path: '/v1/sandboxes/{id}/processes/{pid}', operationId: 'killProcess', tags,
    summary: 'End a background process and everything it started (TERM, then KILL after 2 s)', query: NoQuery,
    response: { status: 200, schema: ProcessView, description: 'The process, as it ended.' },
    handler: (ctx) => withSlot(ctx, async () => {
      const { rec, proc } = findProcess(ctx);
      return { status: 200, body: processView(proc, await ctx.deps.processes.kill(rec, proc)) };
    }),
  },
];
