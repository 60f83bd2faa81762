import Docker from 'dockerode';
import { TEST_IMAGE } from './daemon.ts';
import { SANDBOX_IMAGE } from './tasks.ts';

/** The suite needs a real engine and the test image; without them it fails loudly instead of skipping. */
export default async function setup(): Promise<void> {
  const docker = new Docker({ socketPath: '/var/run/docker.sock' });
  try {
    await docker.ping();
  } catch (err) {
    throw new Error(`the tests need a running Docker engine at /var/run/docker.sock (${(err as Error).message}); run .ci/run, or start dockerd`);
  }
  try {
    await docker.getImage(TEST_IMAGE).inspect();
  } catch {
    throw new Error(`the test image ${TEST_IMAGE} is missing; build it with: npm run image:test`);
  }
  try {
    await docker.getImage(SANDBOX_IMAGE).inspect();
  } catch {
    throw new Error(`the sandbox image ${SANDBOX_IMAGE} (agent task tests) is missing; build it with: npm run image:sandbox`);
  }
}
