import { AppError } from '../errors.ts';
import { errorMessage } from '../log.ts';
import { runtimeFailureOf } from '../runtime/runtime.ts';

/** Maps a command that could not run (sandbox gone or stopped, bad cwd, engine away) to an error the client can act on. */
export function execFailure(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const msg = errorMessage(err);
  switch (runtimeFailureOf(err)) {
    case 'bad_cwd':
      return new AppError('invalid_request', `cwd: ${msg}; create it first, or pass an existing directory`, { field: 'cwd' });
    case 'unreachable':
      return new AppError('sandbox_unavailable', 'the container engine is not answering; retry shortly', undefined, 5);
    default:
      return new AppError('sandbox_unavailable', `the command could not run: ${msg}`);
  }
}
