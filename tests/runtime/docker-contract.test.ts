import { randomBytes } from 'node:crypto';
import { chownSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.ts';
import { DockerRuntime } from '../../src/runtime/docker.ts';
import { egressNames } from '../../src/runtime/egress.ts';
import { createRuntime } from '../../src/runtime/factory.ts';
import { LABEL_INSTANCE } from '../../src/runtime/runtime.ts';
import { docker, TEST_IMAGE } from '../support/daemon.ts';
import { runtimeContract, type RuntimeBackend } from './contract.ts';

/**
 * The Docker runtime as a daemon builds it (its config, the factory), with an instance label and network of
 * its own; homes are plain directories in a temp dir, owned by the sandbox uid as the workspaces module leaves them.
 */
async function dockerBackend(): Promise<RuntimeBackend> {
  const tag = randomBytes(4).toString('hex');
  const dataDir = mkdtempSync(join(tmpdir(), 'sandboxd-contract-'));
  const config = loadConfig({
    SANDBOXED_DATA_DIR: dataDir, SANDBOXD_INSTANCE: `t${tag}`, SANDBOXD_NETWORK: `sbx-test-${tag}`, SANDBOXD_IMAGE: TEST_IMAGE,
    // The daemon lowers its default (65536) to the host's hard limit at boot (src/main.ts); this stays below any host's.
    SANDBOXD_NOFILE: '4096',
  });
  const { network } = config.runtime.docker;
  return {
    runtime: createRuntime(config),
    uid: config.sandboxUid,
    async spec(sandboxId) {
      const home = join(dataDir, 'workspaces', sandboxId);
      mkdirSync(join(home, 'workspace', 'app'), { recursive: true });
      for (const dir of [home, join(home, 'workspace'), join(home, 'workspace', 'app')]) chownSync(dir, config.sandboxUid, config.sandboxGid);
      return { sandboxId, image: TEST_IMAGE, env: {}, ports: [3000], workspace: { kind: 'host-dir', path: home }, memoryMb: 128, cpus: 0.5, pids: 256 };
    },
    unreachable: () => new DockerRuntime({
      socketPath: join(dataDir, 'no-engine.sock'), instance: config.instance, ...config.runtime.docker,
      uid: config.sandboxUid, gid: config.sandboxGid,
    }),
    async cleanup() {
      const filters = JSON.stringify({ label: [`${LABEL_INSTANCE}=${config.instance}`] });
      for (const c of await docker.listContainers({ all: true, filters })) await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
      for (const name of [network, egressNames(network).noneNetwork]) await docker.getNetwork(name).remove().catch(() => undefined);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

runtimeContract('docker', dockerBackend);
