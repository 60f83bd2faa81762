/** Structured log lines on stderr, one JSON object each. Never pass secrets or env values in fields. */
export type Level = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
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
    process.stderr.write(`${line}\n`);
  };
  return { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error') };
}

/** The message of anything thrown. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
