import type { MessagePort } from 'node:worker_threads';
import type { ExecSignal } from '../model/exec.ts';
import type { ExecControl, ExecEvent, ExecResult } from './protocol.ts';

/** stdin bytes sent to the worker but not yet taken by the command's stream; above this the client is not read. */
const STDIN_HIGH_WATER = 1 << 20;
/** Reading the client resumes once the unacked stdin is back under this. */
const STDIN_LOW_WATER = STDIN_HIGH_WATER / 4;
/**
 * What one output message costs of the sandbox's pace at least: the main thread's cost is per message (a
 * socket write) as much as per byte, so a command printing one byte at a time is paced by messages too.
 */
const MIN_CHARGE = 4096;

/** The main thread's end of a command running in a worker: output arrives here, control goes back. */
export class ExecHandle {
  /** Settles when the command has ended (or could not start). */
  readonly result: Promise<ExecResult>;
  private port: MessagePort;
  private listener: (data: Buffer) => void = () => undefined;
  private closed = false;
  private stdinInflight = 0;
  private stdinFull = false;
  private drainListener: () => void = () => undefined;

  /** Hands credit back when the sandbox's output pace allows (OutputPacer). */
  private pace: (bytes: number, credit: () => void) => void;

  constructor(port: MessagePort, outcome: Promise<ExecResult>, pace: (bytes: number, credit: () => void) => void) {
    this.port = port;
    this.pace = pace;
    let markDrained: () => void = () => undefined;
    const drained = new Promise<void>((resolve) => (markDrained = resolve));
    port.once('close', () => markDrained());
    // The result travels on piscina's channel, the output on this port: wait for both.
    const result = outcome.then(async (r) => (await drained, r));
    this.result = result;
    result.finally(() => ((this.closed = true), this.stdinAcked(this.stdinInflight))).catch(() => undefined);
    port.on('message', (e: ExecEvent) => {
      // `picked` is the pool's (its queue timer).
      if (e.t === 'picked') return;
      if (e.t === 'end') (markDrained(), port.close(), this.stdinAcked(this.stdinInflight));
      else if (e.t === 'stdin_ack') this.stdinAcked(e.bytes);
      else this.listener(Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength));
    });
  }

  /** Receives output already encoded for the client; call `ack` with its length once the socket has taken it. */
  onOutput(cb: (data: Buffer) => void): void {
    this.listener = cb;
  }

  /**
   * Sends client input to the command. Answers false once too much is waiting for the command's stream
   * (which a command that does not read never takes): stop reading the client until `onStdinDrain` fires.
   */
  writeStdin(data: Uint8Array): boolean {
    if (this.closed) return true;
    this.stdinInflight += data.byteLength;
    this.send({ t: 'stdin', data });
    if (this.stdinInflight > STDIN_HIGH_WATER) this.stdinFull = true;
    return !this.stdinFull;
  }

  /** Called when input held back by `writeStdin` answering false may flow again (or the command ended). */
  onStdinDrain(cb: () => void): void {
    this.drainListener = cb;
  }

  private stdinAcked(bytes: number): void {
    this.stdinInflight = Math.max(0, this.stdinInflight - bytes);
    if (this.stdinFull && (this.closed || this.stdinInflight < STDIN_LOW_WATER)) {
      this.stdinFull = false;
      this.drainListener();
    }
  }

  /** Returns flow-control credit to the worker, at the sandbox's output pace. */
  ack(bytes: number): void {
    this.pace(Math.max(bytes, MIN_CHARGE), () => this.send({ t: 'ack', bytes }));
  }

  /** The client is gone: stop relaying output (so a paused command can drain and end), then signal it if asked. */
  abandon(signal?: ExecSignal): void {
    this.send({ t: 'detach' });
    if (signal) this.send({ t: 'signal', signal, urgent: true });
  }

  send(ctrl: ExecControl): void {
    if (this.closed) return;
    if (ctrl.t === 'stdin') this.port.postMessage(ctrl, [ctrl.data.buffer as ArrayBuffer]);
    else this.port.postMessage(ctrl);
  }
}
