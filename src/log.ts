/** Structured log lines on stderr, one JSON object each. Never pass secrets or env values in fields. */
export type Level = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/**
 * Whether stderr still takes lines. When its reader goes away (a log collector restarts, a pipe is closed)
 * every write fails with EPIPE: unheard, that error would reach the last-resort handler, which logs it, which
 * fails again, for ever, at 100 % CPU. The first failure turns logging off instead; serving goes on.
 */
let sinkOpen = true;
let sinkWatched = false;

function writeLine(line: string): void {
  if (!sinkOpen) return;
  if (!sinkWatched) {
    sinkWatched = true;
    process.stderr.on('error', () => {
      sinkOpen = false;
    });
  }
  try {
    process.stderr.write(line);
  } catch {
    // A runtime that throws on a closed stream instead of emitting 'error' (Deno) lands here.
    sinkOpen = false;
  }
}

/** A logger that drops lines below `level`; `scope` names the part of the daemon that speaks. */
export function createLogger(level: Level, scope: string): Logger {
  const emit = (at: Level) => (msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[at] < ORDER[level]) return;
    let line: string;
    try {
      line = JSON.stringify({ t: new Date().toISOString(), level: at, scope, msg, ...fields });
    } catch {
      // A field that cannot be serialised (a cycle, a BigInt) must not turn a log line into a crash.
      line = JSON.stringify({ t: new Date().toISOString(), level: at, scope, msg, fields: 'unserialisable' });
    }
    writeLine(`${line}\n`);
  };
  return { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error') };
}

/** The message of anything thrown. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
