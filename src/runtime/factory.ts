import type { Config } from '../config.ts';
import { DockerRuntime } from './docker.ts';
import type { Runtime } from './runtime.ts';

/** The runtime `config.runtime.kind` names, for the main thread and every worker thread alike (Docker is the only one today). */
export function createRuntime(config: Config): Runtime {
  const { docker } = config.runtime;
  return new DockerRuntime({ instance: config.instance, ...docker, uid: config.sandboxUid, gid: config.sandboxGid, egressAllow: config.egressAllow });
}
