/** A command to run inside a sandbox, always as the sandbox user. */
export interface ExecSpec {
  cmd: string[];
  env?: Record<string, string>;
  /** Absolute path inside the container. */
  cwd: string;
  tty?: boolean;
  /** Attach stdin; without it the command reads end-of-file at once. */
  stdin?: boolean;
}

/** Signals a client may send to a running command (delivered to its whole process group). */
export type ExecSignal = 'TERM' | 'KILL' | 'INT' | 'HUP' | 'QUIT' | 'USR1' | 'USR2';
