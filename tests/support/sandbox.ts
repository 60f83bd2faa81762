import { onTestFinished } from 'vitest';
import { createSandbox, type Daemon } from './daemon.ts';

/**
 * A sandbox of the running test's own: created as createSandbox does, and destroyed with its workspace when
 * the test ends, pass or fail, so that no test leaves a running container behind for the next to share.
 */
export async function testSandbox(d: Daemon, body: Record<string, unknown> = {}): Promise<string> {
  const id = await createSandbox(d, body);
  onTestFinished(async () => {
    await d.api('DELETE', `/v1/sandboxes/${id}?purge=true`).catch(() => undefined);
  });
  return id;
}
