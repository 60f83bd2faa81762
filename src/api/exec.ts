import { posix } from 'node:path';
import type { ServerResponse } from 'node:http';
import { AppError } from '../errors.ts';
import type { ExecHandle } from '../exec/handle.ts';
import type { ExecResult } from '../exec/protocol.ts';
import { sseFrame } from '../exec/encode.ts';
import type { ExecSpec } from '../runtime/runtime.ts';
import { execFailure } from './exec-failure.ts';
import { ExecRequest, ExecResponse } from './exec-schemas.ts';
import { countRefusal, sessionLimits, type SessionKind } from './limits.ts';
import { startDetached } from './processes.ts';
import { actorOf, findSandbox } from './lookup.ts';
import type { RequestContext, Route } from './route.ts';
import { NoQuery } from './schemas.ts';

const HOME = '/home/sandbox';
const APP_DIR = `${HOME}/workspace/app`;
const DEFAULT_TIMEOUT_S = 60;
const OUTPUT_CAP_BYTES = 1 << 20;

/** Where a command runs: relative paths are under ~/workspace/app, `~/` is home, absolute stays absolute. */
export function resolveCwd(cwd: string | undefined): string {
  if (cwd === undefined) return APP_DIR;
  if (cwd === '~') return HOME;
  if (cwd.startsWith('~/')) return posix.normalize(`${HOME}/${cwd.slice(2)}`);
  return posix.isAbsolute(cwd) ? posix.normalize(cwd) : posix.normalize(`${APP_DIR}/${cwd}`);
}

/**
 * Takes a session slot for a command in the sandbox `{id}` names, before anything wakes or runs: throws
 * `rate_limited` (429 + Retry-After) when the exec pool, the sandbox's or the tenant's cap is full. Call the
 * answer (once) when the session ends.
 */
export function admitSession(ctx: RequestContext, kind: SessionKind): () => void {
  try {
    ctx.deps.pool.assertRoom();
    return sessionLimits(ctx.deps).acquire(findSandbox(ctx));
  } catch (err) {
    countRefusal(ctx.deps, err, kind);
    throw err;
  }
}

/** Finds the sandbox, starts it if it is asleep, and answers the spec to run plus whether it was woken. */
export async function prepareExec(ctx: RequestContext, req: { cmd: string[]; env?: Record<string, string>; cwd?: string }, extra: Partial<ExecSpec> = {}) {
  const rec = findSandbox(ctx);
  let wake = false;
  if (rec.status !== 'running') {
    await ctx.deps.lifecycle.start(rec.id, 'wake:api', actorOf(ctx));
    wake = true;
  }
  ctx.deps.activity.touch(rec.id, extra.tty ? 'terminal' : 'exec');
  ctx.deps.store.audit.record({
    actor: ctx.caller.name, action: 'sandbox.exec', sandboxId: rec.id, requestId: ctx.requestId, outcome: 'ok',
    detail: { argv0: req.cmd[0], args: req.cmd.length - 1, tty: extra.tty ?? false },
  });
  const spec: ExecSpec = { cmd: req.cmd, cwd: resolveCwd(req.cwd), ...(req.env ? { env: req.env } : {}), ...extra };
  return { sandboxId: rec.id, spec, wake };
}

/**
 * POST exec. `readme` keeps the published README's behaviour: no default timeout, and a client that hangs
 * up leaves the command running (its quick start starts a long-lived server this way).
 */
function execRoute(readme: boolean) {
  return async (ctx: RequestContext<ExecRequest>) => {
    const body = ctx.body;
    if (body.detach && (body.stdin !== undefined || body.timeout_s !== undefined)) {
      throw new AppError('invalid_request', `body.${body.stdin !== undefined ? 'stdin' : 'timeout_s'}: not available with detach (a background process reads no input and runs until it ends or is killed)`);
    }
    const streaming = /\btext\/event-stream\b/.test(ctx.req.headers.accept ?? '');
    // A README command outlives its client, so its slot is held until the command itself ends.
    const release = admitSession(ctx, body.detach ? 'process' : streaming ? 'exec_sse' : 'exec');
    let handle: ExecHandle;
    let wake: boolean;
    try {
      const prepared = await prepareExec(ctx, body, { stdin: body.stdin !== undefined });
      wake = prepared.wake;
      // The launch holds the slot; once it answers, the process is counted as a background one instead.
      if (body.detach) return await startDetached(ctx, prepared.sandboxId, prepared.spec, wake).finally(release);
      const timeoutS = body.timeout_s ?? (readme ? undefined : DEFAULT_TIMEOUT_S);
      handle = ctx.deps.pool.exec({
        sandboxId: prepared.sandboxId, spec: prepared.spec, capBytes: OUTPUT_CAP_BYTES, ...(streaming ? { stream: 'sse' as const } : {}),
        ...(timeoutS !== undefined ? { timeoutMs: timeoutS * 1000 } : {}),
      });
    } catch (err) {
      release();
      throw err;
    }
    handle.result.finally(release).catch(() => undefined);
    if (body.stdin !== undefined) {
      handle.writeStdin(new Uint8Array(Buffer.from(body.stdin, 'utf8')));
      handle.send({ t: 'stdin_end' });
    }
    let finished = false;
    ctx.res.on('close', () => {
      if (finished) return;
      // A client gone mid-command: the README route lets it run on; /v1 ends it.
      handle.abandon(readme ? undefined : 'KILL');
    });
    if (streaming) return streamExec(ctx.res, handle, wake, ctx.deps.config.tasks.heartbeatS * 1000, () => (finished = true));
    let result: ExecResult;
    try {
      result = await handle.result;
    } catch (err) {
      throw execFailure(err);
    } finally {
      finished = true;
    }
    return { status: 200, body: { ...result, ...(wake ? { wake } : {}) } };
  };
}

/** Server-Sent Events: `stdout`/`stderr` frames as output arrives, then `exit` (or `error`); heartbeats keep proxies from closing it. */
async function streamExec(res: ServerResponse, handle: ExecHandle, wake: boolean, heartbeatMs: number, markFinished: () => void): Promise<void> {
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
  res.flushHeaders();
  if (wake) res.write(sseFrame('wake', { wake: true }));
  // The worker has framed the output already; this thread only hands bytes to the socket.
  handle.onOutput((data) => res.write(data, () => handle.ack(data.length)));
  const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), heartbeatMs);
  try {
    const result = await handle.result;
    res.write(sseFrame('exit', { exit_code: result.exit_code, duration_ms: result.duration_ms, timed_out: result.timed_out }));
  } catch (err) {
    const failure = execFailure(err);
    res.write(sseFrame('error', { code: failure.code, message: failure.message }));
  } finally {
    markFinished();
    clearInterval(heartbeat);
    res.end();
  }
}

const tags = ['exec'];
const response = { status: 200, schema: ExecResponse, description: 'The finished command (or, with `Accept: text/event-stream`, an SSE stream of stdout/stderr/exit frames).' };

/** Command execution routes: the canonical one and the README's. */
export const execRoutes: Route[] = [
  {
    method: 'POST', path: '/v1/sandboxes/{id}/exec', operationId: 'execCommand', tags,
    summary: 'Run a command (default timeout 60 s; a client that disconnects ends it)',
    body: ExecRequest, query: NoQuery, response, handler: execRoute(false),
  },
  {
    method: 'POST', path: '/sandbox/{id}/exec', operationId: 'readmeExecCommand', tags: ['readme'],
    summary: 'Run a command (README route: no default timeout; the command outlives a client that hangs up)',
    body: ExecRequest, query: NoQuery, response, handler: execRoute(true),
  },
];
