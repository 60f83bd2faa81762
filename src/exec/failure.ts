import { AppError } from '../errors.ts';
import { errorMessage } from '../log.ts';

/** Maps a command that could not run (container gone, bad cwd) to an error the client can act on. */
export function execFailure(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const msg = errorMessage(err);
  if (/no such file or directory|chdir/i.test(msg)) return new AppError('invalid_request', `the command could not start: ${msg}`, { field: 'cwd' });
  return new AppError('sandbox_unavailable', `the command could not run: ${msg}`);
}
