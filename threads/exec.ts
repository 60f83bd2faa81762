import { isUtf8 } from 'node:buffer';
import type { MessagePort } from 'node:worker_threads';
import type { Config } from '../src/config.ts';
import { ControlQueue } from '../src/exec/control.ts';
import { OutputEncoder } from '../src/exec/encode.ts';
import { QUEUE_EXPIRED, type ExecControl, type ExecEvent, type ExecResult, type ExecTask } from '../src/exec/protocol.ts';
import type { ExecSession } from '../src/runtime/runtime.ts';
import { workerContext } from './context.ts';

const KILL_GRACE_MS = 2000;
/** Output is gathered this long (or up to COALESCE_BYTES) into one message: fewer, larger hand-offs to the main thread. */
const COALESCE_MS = 10;
/**
 * A command that keeps printing much (its last message carried at least BUSY_BYTES, less than BUSY_GAP_MS
 * ago) is gathered this long instead: every message costs the main thread a socket write, and fifty floods
 * at 10 ms each would keep it busy enough to delay every other request. A terminal's echo and prompt
 * (a few bytes a message) still leave after 10 ms.
 */
const BUSY_COALESCE_MS = 50;
const BUSY_GAP_MS = 100;
const BUSY_BYTES = 4096;
const COALESCE_BYTES = 64 * 1024;
/** Bytes handed to the main thread but not yet taken by the client's socket; above this the command is paused. */
const MAX_INFLIGHT = 1 << 20;

/**
 * Runs one command in a sandbox through the runtime and relays it over `port`: output goes to the main
 * thread encoded for the client (streaming) or is kept up to the cap (buffered result); stdin, signals,
 * resizes and acks come back the other way. Resolves when the command has ended.
 */
export async function runExec(task: { config: Config; exec: ExecTask; port: MessagePort }): Promise<ExecResult> {
  const { port } = task;
  try {
    // Past its deadline its client has been answered 429: running it now would surprise everyone.
    if (task.exec.startBy !== undefined && Date.now() > task.exec.startBy) throw new Error(QUEUE_EXPIRED);
    port.postMessage({ t: 'picked' } satisfies ExecEvent);
    const session = await workerContext(task.config, 'exec').runtime.exec(task.exec.sandboxId, task.exec.spec);
    return await relay(session, task.exec, port);
  } finally {
    port.postMessage({ t: 'end' } satisfies ExecEvent);
    port.close();
  }
}

/** Streams encoded output to the main thread in coalesced messages, paused while the client lags. */
class OutputRelay {
  private encoder: OutputEncoder;
  private port: MessagePort;
  private session: ExecSession;
  /** Output gathered for the next message, both streams in the order it came. */
  private pending: { pieces: [stream: 'stdout' | 'stderr', chunk: Buffer][]; size: number } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private inflight = 0;
  private paused = false;
  /** When the last message went out and how many bytes of output it carried: is the command busy? */
  private last = { at: 0, bytes: 0 };
  relaying = true;

  constructor(encoder: OutputEncoder, port: MessagePort, session: ExecSession) {
    this.encoder = encoder;
    this.port = port;
    this.session = session;
  }

  push(stream: 'stdout' | 'stderr', chunk: Buffer): void {
    if (!this.relaying) return; // detached: keep draining so the command never blocks on a full pipe
    // stdout and stderr share one gathering window, in order: a command alternating them byte by byte costs
    // the main thread one write per window (SSE, terminal), not one per byte. (WebSocket JSON frames stay one
    // per run; the pace charges each message at least MIN_CHARGE, see src/exec/handle.ts.)
    this.pending ??= { pieces: [], size: 0 };
    this.pending.pieces.push([stream, chunk]);
    this.pending.size += chunk.length;
    if (this.pending.size >= COALESCE_BYTES) return this.flush();
    const busy = Date.now() - this.last.at < BUSY_GAP_MS && this.last.bytes >= BUSY_BYTES;
    this.timer ??= setTimeout(() => this.flush(), busy ? BUSY_COALESCE_MS : COALESCE_MS);
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const p = this.pending;
    this.pending = undefined;
    if (!p || !this.relaying) return;
    this.last = { at: Date.now(), bytes: p.size };
    const encoded: Buffer[] = [];
    // Runs of one stream are encoded together (one SSE or JSON frame per run, not per chunk).
    for (let i = 0; i < p.pieces.length;) {
      const stream = p.pieces[i]![0];
      const run: Buffer[] = [];
      for (; i < p.pieces.length && p.pieces[i]![0] === stream; i++) run.push(p.pieces[i]![1]);
      const data = this.encoder.encode(stream, run.length === 1 ? run[0]! : Buffer.concat(run));
      if (data) encoded.push(data);
    }
    if (this.encoder.joinable && encoded.length > 1) this.post(Buffer.concat(encoded));
    else for (const data of encoded) this.post(data);
  }

  /** Flushes, then what the encoder still holds (the end of the command). */
  finish(): void {
    this.flush();
    if (this.relaying) for (const frame of this.encoder.flush()) this.post(frame);
  }

  ack(bytes: number): void {
    this.inflight -= bytes;
    if (this.paused && this.inflight < MAX_INFLIGHT / 4) {
      this.paused = false;
      this.session.resume();
    }
  }

  detach(): void {
    this.relaying = false;
    this.pending = undefined;
    this.paused = false;
    this.session.resume();
  }

  private post(buf: Buffer): void {
    const data = new Uint8Array(buf);
    // Counted before the post: transferring the buffer detaches it here, and its length reads 0 after.
    this.inflight += data.length;
    this.port.postMessage({ t: 'out', data } satisfies ExecEvent, [data.buffer as ArrayBuffer]);
    if (!this.paused && this.inflight > MAX_INFLIGHT) {
      this.paused = true;
      this.session.pause();
    }
  }
}

async function relay(session: ExecSession, job: ExecTask, port: MessagePort): Promise<ExecResult> {
  const started = Date.now();
  const kept = { stdout: [] as Buffer[], stderr: [] as Buffer[] };
  const size = { stdout: 0, stderr: 0 };
  let truncated = false;
  let timedOut = false;
  const out = job.stream ? new OutputRelay(new OutputEncoder(job.stream), port, session) : undefined;

  session.onOutput((stream, chunk) => {
    if (out) return out.push(stream, chunk);
    const room = job.capBytes - size[stream];
    if (room <= 0) return void (truncated = true);
    const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
    if (part.length < chunk.length) truncated = true;
    kept[stream].push(part);
    size[stream] += part.length;
  });

  if (job.size) await session.resize(job.size.cols, job.size.rows).catch(() => undefined);
  // Signals and resizes (engine calls) go through a bounded, coalescing queue: a flood of them costs one
  // call at a time, and the end-of-session hang-up and kill jump it. Input has a queue of its own that waits
  // for the controls sent before it (a resize is not overtaken), but a signal never waits for input a command
  // does not read. Each write is acked once the stream has taken it: the main thread stops reading the
  // client while too much is unacked, so a stdin flood cannot pile up in this process.
  const controls = new ControlQueue(session);
  let input: Promise<unknown> = Promise.resolve();
  port.on('message', (msg: ExecControl) => {
    switch (msg.t) {
      case 'ack': return out?.ack(msg.bytes);
      case 'stdin':
      case 'stdin_end': {
        const before = controls.idle();
        input = input.then(() => before).then(() => writeInput(msg)).catch(() => undefined);
        return;
      }
      case 'signal': return msg.urgent ? controls.urgent(msg.signal) : controls.signal(msg.signal);
      case 'resize': return controls.resize(msg.cols, msg.rows);
      // Immediate: a paused command must drain (and see its hang-up) even while controls wait.
      case 'detach': return out?.detach();
    }
  });
  const writeInput = async (msg: Extract<ExecControl, { t: 'stdin' | 'stdin_end' }>) => {
    if (msg.t === 'stdin_end') return session.endInput();
    try {
      await session.write(Buffer.from(msg.data.buffer, msg.data.byteOffset, msg.data.byteLength));
    } finally {
      port.postMessage({ t: 'stdin_ack', bytes: msg.data.byteLength } satisfies ExecEvent);
    }
  };

  let timer: NodeJS.Timeout | undefined;
  if (job.timeoutMs !== undefined) {
    timer = setTimeout(() => {
      timedOut = true;
      void session.kill('TERM').catch(() => undefined);
      setTimeout(() => void session.kill('KILL').catch(() => undefined), KILL_GRACE_MS).unref();
    }, job.timeoutMs);
  }
  try {
    const { exitCode } = await session.done;
    out?.finish();
    const stdout = Buffer.concat(kept.stdout);
    const stderr = Buffer.concat(kept.stderr);
    const binary = !isUtf8(stdout) || !isUtf8(stderr);
    return {
      stdout: stdout.toString(binary ? 'base64' : 'utf8'),
      stderr: stderr.toString(binary ? 'base64' : 'utf8'),
      ...(binary ? { encoding: 'base64' as const } : {}),
      exit_code: exitCode,
      duration_ms: Date.now() - started,
      timed_out: timedOut,
      truncated,
    };
  } finally {
    if (timer) clearTimeout(timer);
  }
}
