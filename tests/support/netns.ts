import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './daemon.ts';

const run = promisify(execFile);

/**
 * A "remote client" a test makes itself: a network namespace joined to this host by a veth pair, on
 * addresses from the benchmarking range (198.18.0.0/15), so the daemon sees a non-loopback peer while no
 * traffic leaves the machine. `hostAddress` is this host's end: the daemon's listeners on 0.0.0.0 answer there.
 */
export class RemoteClient {
  readonly ns = `sbxt-${randomBytes(3).toString('hex')}`;
  private readonly tag = randomBytes(3).toString('hex');
  readonly hostAddress = `198.18.${Math.floor(Math.random() * 250) + 1}.1`;

  /** Makes the namespace and its link (as root). */
  async create(): Promise<this> {
    const [hv, nv] = [`vzh${this.tag}`, `vzn${this.tag}`];
    const peer = this.hostAddress.replace(/\.1$/, '.2');
    for (const cmd of [
      ['netns', 'add', this.ns], ['link', 'add', hv, 'type', 'veth', 'peer', 'name', nv], ['link', 'set', nv, 'netns', this.ns],
      ['addr', 'add', `${this.hostAddress}/30`, 'dev', hv], ['link', 'set', hv, 'up'],
      ['-n', this.ns, 'addr', 'add', `${peer}/30`, 'dev', nv], ['-n', this.ns, 'link', 'set', nv, 'up'], ['-n', this.ns, 'link', 'set', 'lo', 'up'],
    ]) await run('ip', cmd);
    return this;
  }

  /** Runs a CommonJS Node script inside the namespace and answers what it printed, parsed as JSON. */
  async node<T>(script: string): Promise<T> {
    const { stdout } = await run('ip', ['netns', 'exec', this.ns, join(ROOT, 'node_modules/.bin/node'), '-e', script]);
    return JSON.parse(stdout) as T;
  }

  /** Deletes the namespace, and with it the veth pair. */
  async remove(): Promise<void> {
    await run('ip', ['netns', 'del', this.ns]).catch(() => undefined);
  }
}
