/** A background process started with `detach: true`. Whether it still runs is asked of the sandbox. */
export interface ProcessRecord {
  sandboxId: string;
  pid: number;
  /** Names its log and exit-code files inside the sandbox. */
  key: string;
  cmd: string[];
  cwd: string;
  startedAt: number;
}
