import { isUtf8 } from 'node:buffer';
import type { MessagePort } from 'node:worker_threads';
import type { Config } from '../src/config.ts';
import type { ExecControl, ExecEvent, ExecResult, ExecTask } from '../src/exec/protocol.ts';
import type { ExecSession } from '../src/runtime/runtime.ts';
import { workerContext } from './context.ts';

const KILL_GRACE_MS = 2000;

/**
 * Runs one command in a sandbox through the runtime and relays it over `port`: output chunks go to the
 * main thread as they arrive (streaming) or are kept up to the cap (buffered result); stdin, signals,
 * resizes and flow control come back the other way. Resolves when the command has ended.
 */
export async function runExec(task: { config: Config; exec: ExecTask; port: MessagePort }): Promise<ExecResult> {
  const { port } = task;
  try {
    const session = await workerContext(task.config, 'exec').runtime.exec(task.exec.sandboxId, task.exec.spec);
    port.postMessage({ t: 'started' } satisfies ExecEvent);
    return await relay(session, task.exec, port);
  } finally {
    port.postMessage({ t: 'end' } satisfies ExecEvent);
    port.close();
  }
}

async function relay(session: ExecSession, job: ExecTask, port: MessagePort): Promise<ExecResult> {
  const started = Date.now();
  const kept = { stdout: [] as Buffer[], stderr: [] as Buffer[] };
  const size = { stdout: 0, stderr: 0 };
  let truncated = false;
  let relaying = true;
  let timedOut = false;

  session.onOutput((stream, chunk) => {
    if (job.stream) {
      if (!relaying) return; // detached: keep draining so the command never blocks on a full pipe
      const data = new Uint8Array(chunk);
      port.postMessage({ t: 'out', stream, data } satisfies ExecEvent, [data.buffer as ArrayBuffer]);
      return;
    }
    const room = job.capBytes - size[stream];
    if (room <= 0) return void (truncated = true);
    const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
    if (part.length < chunk.length) truncated = true;
    kept[stream].push(part);
    size[stream] += part.length;
  });

  if (job.size) await session.resize(job.size.cols, job.size.rows).catch(() => undefined);
  // Control runs in arrival order: a resize (an engine call) must not be overtaken by the input after it.
  let queue: Promise<unknown> = Promise.resolve();
  port.on('message', (msg: ExecControl) => {
    queue = queue.then(() => control(session, msg)).catch(() => undefined);
  });
  const control = async (s: ExecSession, msg: ExecControl) => {
    switch (msg.t) {
      case 'stdin': return s.write(Buffer.from(msg.data));
      case 'stdin_end': return s.endInput();
      case 'signal': return s.kill(msg.signal);
      case 'resize': return s.resize(msg.cols, msg.rows);
      case 'pause': return s.pause();
      case 'resume': return s.resume();
      case 'detach':
        relaying = false;
        return s.resume();
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
    const out = Buffer.concat(kept.stdout);
    const err = Buffer.concat(kept.stderr);
    const binary = !isUtf8(out) || !isUtf8(err);
    return {
      stdout: out.toString(binary ? 'base64' : 'utf8'),
      stderr: err.toString(binary ? 'base64' : 'utf8'),
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
