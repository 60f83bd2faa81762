import { expect } from 'vitest';
import type { Daemon } from './daemon.ts';
import { runAll, type Outcome, type Script } from './http-fuzz.ts';

const BATCH = 50;
const ESCAPED = /.*(unhandled|uncaught|unexpected error).*/i;

/**
 * Runs fuzz scripts at one of a daemon's listeners: the stalled ones alongside (the server must cut each off
 * itself), the rest in batches of 50. After every batch the daemon is the same process, `normal()` still
 * succeeds, and nothing escaped a handler into the log. Answers every failure: a connection neither answered
 * nor closed, a stalled client never cut off, or what `fault` says of an outcome.
 */
export async function fuzzListener(d: Daemon, port: number, scripts: Script[], opts: { normal: () => Promise<boolean>; fault: (o: Outcome) => string | undefined }): Promise<{ failures: string[]; stalled: number; fast: number; fastMs: number }> {
  const pid = d.proc.pid;
  const stalled = scripts.filter((s) => s.stalls);
  const fast = scripts.filter((s) => !s.stalls);
  const slowRun = runAll(port, stalled, 40, { quietMs: 20_000, maxMs: 20_000 });
  const failures: string[] = [];
  const judge = (o: Outcome) => {
    const fault = opts.fault(o);
    if (fault) failures.push(`${o.kind}: ${fault}`);
    if (!o.closed && !o.statuses.length) failures.push(`${o.kind}: neither answered nor closed`);
  };
  const started = Date.now();
  for (let i = 0; i < fast.length; i += BATCH) {
    (await runAll(port, fast.slice(i, i + BATCH), BATCH, { quietMs: 150 })).forEach(judge);
    expect(d.proc.exitCode, `daemon exited after batch ${i / BATCH}:\n${d.output.slice(-3000)}`).toBeNull();
    expect(d.proc.pid).toBe(pid);
    expect(await opts.normal(), `a normal request failed after batch ${i / BATCH}`).toBe(true);
    // The daemon's last-resort handler keeps it alive, so an escaped error shows only in its log.
    expect(d.output.match(ESCAPED)?.[0], `after batch ${i / BATCH}`).toBeUndefined();
    if (failures.length > 20) break;
  }
  const fastMs = Date.now() - started;
  for (const o of await slowRun) {
    judge(o);
    if (!o.closed) failures.push(`${o.kind}: a stalled client was never cut off`);
  }
  return { failures, stalled: stalled.length, fast: fast.length, fastMs };
}
