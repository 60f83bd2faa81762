import type { ServerResponse } from 'node:http';
import { AppError } from '../errors.ts';
import type { ExecHandle } from '../exec/handle.ts';
import type { ExecResult } from '../exec/protocol.ts';
import { sseFrame } from '../exec/encode.ts';
import type { ExecSpec } from '../model/exec.ts';
import { execFailure } from '../exec/failure.ts';
import { ExecRequest, ExecResponse } from './exec-schemas.ts';
import type { SessionKind } from '../exec/sessions.ts';
import type { CommandRequest } from '../exec/service.ts';
import { processView } from './processes.ts';
import { actorOf, findSandbox } from './lookup.ts';
import type { RequestContext, Route } from './route.ts';
import { NoQuery } from './schemas.ts';

const DEFAULT_TIMEOUT_S = 60;
const OUTPUT_CAP_BYTES = 1 << 20;

/** Takes a session slot for a command in the sandbox `{id}` names (429 past a cap); call the answer once the session ends. */
export function admitSession(ctx: RequestContext, kind: SessionKind): () => void {
  return ctx.deps.exec.admit(findSandbox(ctx), kind);
}

/** Finds the sandbox, starts it if it is asleep, and answers the spec to run plus whether it was woken. */
export async function prepareExec(ctx: RequestContext, req: CommandRequest, extra: Partial<ExecSpec> = {}) {
  const rec = findSandbox(ctx);
  const { spec, wake } = await ctx.deps.exec.prepare(rec, req, actorOf(ctx), extra);
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
      if (body.detach) {
        const proc = await ctx.deps.processes.launch(findSandbox(ctx), prepared.spec).finally(release);
        return { status: 202, body: { ...processView(proc, { status: 'running', exitCode: null }), ...(wake ? { wake } : {}) } };
      }
      const timeoutS = body.timeout_s ?? (readme ? undefined : DEFAULT_TIMEOUT_S);
      handle = ctx.deps.exec.run({
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
