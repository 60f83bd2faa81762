import { posix } from 'node:path';
import { AppError } from '../errors.ts';

export const HOME_IN_SANDBOX = '/home/sandbox';
export const APP_DIR_IN_HOME = ['workspace', 'app'];

/** A client path, checked and split into components under the sandbox's home. */
export interface WorkspacePath {
  /** Components below the home directory; empty for the home itself. */
  parts: string[];
  /** The same path as the sandbox sees it. */
  inSandbox: string;
}

const MAX_PATH = 4096;

/**
 * Resolves a client path: relative to ~/workspace/app, or to home with `~/`, or absolute under
 * /home/sandbox. Refuses NUL, `..`, and anything that would leave the home; names no host path.
 */
export function resolveWorkspacePath(raw: string, field = 'path'): WorkspacePath {
  const bad = (why: string) => new AppError('invalid_request', `${field}: ${why}`, { field });
  if (typeof raw !== 'string' || raw === '') throw bad('is required');
  if (raw.length > MAX_PATH) throw bad(`longer than ${MAX_PATH} characters`);
  if (raw.includes('\0')) throw bad('contains a NUL byte');
  let base: string[];
  let rest: string;
  if (raw === '~' || raw.startsWith('~/')) {
    base = [];
    rest = raw.slice(1);
  } else if (raw.startsWith('/')) {
    if (raw !== HOME_IN_SANDBOX && !raw.startsWith(`${HOME_IN_SANDBOX}/`)) throw bad(`absolute paths must be under ${HOME_IN_SANDBOX}`);
    base = [];
    rest = raw.slice(HOME_IN_SANDBOX.length);
  } else {
    base = [...APP_DIR_IN_HOME];
    rest = raw;
  }
  const segments = rest.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.includes('..')) throw bad("'..' is not allowed");
  const parts = [...base, ...segments];
  return { parts, inSandbox: posix.join(HOME_IN_SANDBOX, ...parts) };
}
