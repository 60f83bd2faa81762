import type { MessagePort } from 'node:worker_threads';
import type { ExecSignal } from '../runtime/runtime.ts';
import type { ExecControl, ExecEvent, ExecResult } from './protocol.ts';

/** The main thread's end of a command running in a worker: output arrives here, control goes back. */
export class ExecHandle {
  /** Settles when the command has ended (or could not start). */
  readonly result: Promise<ExecResult>;
  /** Settles once the command is running in the sandbox. */
  readonly started: Promise<void>;
  private port: MessagePort;
  private listener: (data: Buffer) => void = () => undefined;
  private closed = false;

  constructor(port: MessagePort, outcome: Promise<ExecResult>) {
    this.port = port;
    let markStarted: () => void = () => undefined;
    let markDrained: () => void = () => undefined;
    this.started = new Promise<void>((resolve) => (markStarted = resolve));
    const drained = new Promise<void>((resolve) => (markDrained = resolve));
    port.once('close', () => markDrained());
    // The result travels on piscina's channel, the output on this port: wait for both.
    const result = outcome.then(async (r) => (await drained, r));
    this.result = result;
    // A command that fails to start settles `result` without `started`; let awaiting `started` end too.
    result.then(() => markStarted(), () => markStarted());
    result.finally(() => (this.closed = true)).catch(() => undefined);
    port.on('message', (e: ExecEvent) => {
      if (e.t === 'started') markStarted();
      else if (e.t === 'end') (markDrained(), port.close());
      else this.listener(Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength));
    });
  }

  /** Receives output already encoded for the client; call `ack` with its length once the socket has taken it. */
  onOutput(cb: (data: Buffer) => void): void {
    this.listener = cb;
  }

  /** Returns flow-control credit to the worker. */
  ack(bytes: number): void {
    this.send({ t: 'ack', bytes });
  }

  /** The client is gone: stop relaying output (so a paused command can drain and end), then signal it if asked. */
  abandon(signal?: ExecSignal): void {
    this.send({ t: 'detach' });
    if (signal) this.send({ t: 'signal', signal });
  }

  send(ctrl: ExecControl): void {
    if (this.closed) return;
    if (ctrl.t === 'stdin') this.port.postMessage(ctrl, [ctrl.data.buffer as ArrayBuffer]);
    else this.port.postMessage(ctrl);
  }
}
