import type { RawData, WebSocket } from 'ws';
import { AppError } from '../errors.ts';
import type { ExecHandle } from '../exec/handle.ts';
import { errorMessage } from '../log.ts';
import { execFailure } from '../exec/failure.ts';
import { admitSession, prepareExec } from './exec.ts';
import { ClientFrame, ExecWsRequest, TerminalQuery } from './exec-schemas.ts';
import { findSandbox } from './lookup.ts';
import type { RequestContext, WsRoute } from './route.ts';
import { validate } from './validate.ts';

const FIRST_FRAME_TIMEOUT_MS = 10_000;
const HANGUP_GRACE_MS = 1000;
/** How often a client whose input is held back is pinged, to notice it has gone. */
const PAUSED_PING_MS = 5000;
const LOGIN_SHELL = 'if command -v bash >/dev/null 2>&1; then exec bash -l; else exec sh -l; fi';

/** Parses and validates one JSON text frame from a client. */
function parseFrame<T>(schema: Parameters<typeof validate>[0], data: RawData): T {
  let value: unknown;
  try {
    value = JSON.parse(data.toString());
  } catch {
    throw new AppError('invalid_request', 'frame: not valid JSON');
  }
  return validate<T>(schema, value, 'body');
}

/**
 * Client input to the command, with back-pressure: while the command's stream has not taken what was sent
 * (a command that does not read), the client's socket is not read, so TCP holds the client back instead of
 * this process buffering without bound.
 */
function sendInput(ws: WebSocket, handle: ExecHandle, data: Uint8Array): void {
  if (handle.writeStdin(data) || ws.isPaused) return;
  ws.pause();
  // A socket that is not read never reports its peer gone: ping it, so a write to a dead client fails,
  // the socket closes and the command is ended with it.
  const probe = setInterval(() => {
    if (!ws.isPaused || ws.readyState !== ws.OPEN) return clearInterval(probe);
    ws.ping();
  }, PAUSED_PING_MS);
  probe.unref();
}

/** Resumes reading the client once its held-back input has drained. */
function resumeOnDrain(ws: WebSocket, handle: ExecHandle): void {
  handle.onStdinDrain(() => {
    if (ws.readyState === ws.OPEN && ws.isPaused) ws.resume();
  });
}

/** Gives a session slot back exactly when its socket is gone, even if the handshake never completed. */
function releaseWithSocket(ctx: RequestContext, release: () => void): void {
  // A client that hung up while its sandbox was waking has closed already: no 'close' event is coming.
  if (ctx.req.socket.destroyed) return release();
  ctx.req.socket.once('close', release);
}

/** Applies a client's control frame to a running command. */
function applyControl(ws: WebSocket, handle: ExecHandle, frame: ClientFrame): void {
  switch (frame.type) {
    case 'stdin': return sendInput(ws, handle, new Uint8Array(Buffer.from(frame.data, frame.encoding ?? 'utf8')));
    case 'stdin_end': return handle.send({ t: 'stdin_end' });
    case 'resize': return handle.send({ t: 'resize', cols: frame.cols, rows: frame.rows });
    case 'signal': return handle.send({ t: 'signal', signal: frame.signal });
  }
}

/** Ends the command when the client goes away first: hang-up, then kill after a grace period. */
function endOnClose(ws: WebSocket, handle: ExecHandle): void {
  let finished = false;
  handle.result.finally(() => (finished = true)).catch(() => undefined);
  ws.on('close', () => {
    if (finished) return;
    handle.abandon('HUP');
    setTimeout(() => handle.send({ t: 'signal', signal: 'KILL', urgent: true }), HANGUP_GRACE_MS).unref();
  });
}

/** Hands the worker's ready frames to the socket, returning credit once each is sent. */
function pipeOutput(ws: WebSocket, handle: ExecHandle, binary: boolean): void {
  handle.onOutput((data) => {
    if (ws.readyState !== ws.OPEN) return;
    ws.send(data, { binary }, () => handle.ack(data.length));
  });
}

function sendJson(ws: WebSocket, value: unknown): void {
  if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(value));
}

/**
 * GET /exec/ws: the first text frame is the command (`{cmd, env?, cwd?, timeout_s?}`); output comes back as
 * JSON text frames `{type: "stdout"|"stderr", data, encoding?}` and finally `{type: "exit", ...}`.
 */
function openExecSocket(ctx: RequestContext) {
  findSandbox(ctx); // 404 before the handshake
  // The slot is taken before the handshake (a refusal is a plain 429) and held until the socket is gone
  // (the command is ended with it).
  const release = admitSession(ctx, 'exec_ws');
  releaseWithSocket(ctx, release);
  return (ws: WebSocket) => {
    const waiting = setTimeout(() => ws.close(1008, 'expected the command as the first frame'), FIRST_FRAME_TIMEOUT_MS);
    ws.once('message', async (data) => {
      clearTimeout(waiting);
      try {
        const req = parseFrame<ExecWsRequest>(ExecWsRequest, data);
        const { sandboxId, spec, wake } = await prepareExec(ctx, req, { stdin: true });
        const handle = ctx.deps.exec.run({
          sandboxId, spec, capBytes: 0, stream: 'json', ...(req.timeout_s ? { timeoutMs: req.timeout_s * 1000 } : {}),
        });
        if (wake) sendJson(ws, { type: 'wake' });
        pipeOutput(ws, handle, false);
        endOnClose(ws, handle);
        resumeOnDrain(ws, handle);
        ws.on('message', (next) => {
          try {
            applyControl(ws, handle, parseFrame<ClientFrame>(ClientFrame, next));
          } catch (err) {
            sendJson(ws, { type: 'error', message: errorMessage(err) });
          }
        });
        const result = await handle.result;
        sendJson(ws, { type: 'exit', exit_code: result.exit_code, duration_ms: result.duration_ms, timed_out: result.timed_out });
        ws.close(1000);
      } catch (err) {
        const failure = execFailure(err);
        sendJson(ws, { type: 'error', code: failure.code, message: failure.message });
        ws.close(1011);
      }
    });
  };
}

/**
 * GET /terminal: a login shell on a PTY. Binary frames carry the terminal's bytes both ways; text frames
 * carry JSON control (`resize`, `signal`) in, and `{type: "exit", code}` out. Closing the socket ends the shell.
 */
async function openTerminal(ctx: RequestContext<undefined, TerminalQuery>) {
  const release = admitSession(ctx, 'terminal');
  let prepared;
  try {
    prepared = await prepareExec(ctx, { cmd: ['/bin/sh', '-c', LOGIN_SHELL], env: { TERM: 'xterm-256color' } }, { tty: true, stdin: true });
  } catch (err) {
    release();
    throw err;
  }
  releaseWithSocket(ctx, release);
  const { sandboxId, spec, wake } = prepared;
  return (ws: WebSocket) => {
    const size = { cols: ctx.query.cols ?? 80, rows: ctx.query.rows ?? 24 };
    let handle: ExecHandle;
    try {
      handle = ctx.deps.exec.run({ sandboxId, spec, capBytes: 0, stream: 'raw', size });
    } catch (err) {
      sendJson(ws, { type: 'error', code: execFailure(err).code, message: execFailure(err).message });
      return ws.close(1013);
    }
    // An open terminal holds the sandbox awake until it closes.
    const lease = ctx.deps.activity.openLease(sandboxId, 'terminal');
    handle.result.finally(() => lease.release()).catch(() => undefined);
    if (wake) sendJson(ws, { type: 'wake' });
    pipeOutput(ws, handle, true);
    endOnClose(ws, handle);
    resumeOnDrain(ws, handle);
    ws.on('message', (data, isBinary) => {
      if (isBinary) return sendInput(ws, handle, new Uint8Array(Buffer.isBuffer(data) ? data : Buffer.concat(data as Buffer[])));
      try {
        applyControl(ws, handle, parseFrame<ClientFrame>(ClientFrame, data));
      } catch (err) {
        sendJson(ws, { type: 'error', message: errorMessage(err) });
      }
    });
    handle.result.then(
      (r) => (sendJson(ws, { type: 'exit', code: r.exit_code }), ws.close(1000)),
      (err: unknown) => (sendJson(ws, { type: 'error', message: execFailure(err).message }), ws.close(1011)),
    );
  };
}

const tags = ['exec'];

/** WebSocket routes for streaming exec and the interactive terminal. */
export const execWsRoutes: WsRoute[] = [
  {
    path: '/v1/sandboxes/{id}/exec/ws', operationId: 'execWebSocket', tags,
    summary: 'Run a command over a WebSocket (first frame: the command; JSON frames out; disconnect ends it)',
    open: openExecSocket,
  },
  {
    path: '/v1/sandboxes/{id}/terminal', operationId: 'terminal', tags, query: TerminalQuery,
    summary: 'Interactive PTY login shell over a WebSocket (binary stdio, JSON resize/signal/exit frames)',
    open: openTerminal,
  },
];
