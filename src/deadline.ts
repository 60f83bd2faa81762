/**
 * `promise`, or a rejection with `late()` once `ms` have passed without it settling. The timer is cleared
 * either way and never keeps the process alive; the promise itself goes on (cancel it in the caller's catch).
 */
export function withDeadline<T>(promise: Promise<T>, ms: number, late: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(late()), ms);
    timer.unref?.();
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
