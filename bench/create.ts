import { execFile } from 'node:child_process';
import { chownSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startDaemon, TEST_IMAGE } from '../tests/support/daemon.ts';
import { ratio, summarize, timeIt, type BenchSection } from './stats.ts';

const run = promisify(execFile);

/**
 * Create latency: `POST /v1/sandboxes` until its 201 (sent once the container runs) vs `docker run -d` of
 * the same image with the same hardening flags, limits, network and a bind-mounted home, in the same run.
 */
export async function benchCreate(opts: { n: number }): Promise<BenchSection> {
  const d = await startDaemon();
  const baselineNames: string[] = [];
  try {
    const api: number[] = [];
    const cli: number[] = [];
    // One of each first, so image and network caches are warm for both sides.
    for (let i = -1; i < opts.n; i++) {
      const t = await timeIt(async () => {
        const r = await d.api('POST', '/v1/sandboxes', {});
        if (r.status !== 201) throw new Error(`create answered ${r.status}: ${r.text}`);
      });
      const name = `bench-run-${d.instance}-${i + 1}`;
      const home = join(d.dataDir, 'baseline', name);
      mkdirSync(join(home, 'workspace/app'), { recursive: true });
      for (const p of [home, join(home, 'workspace'), join(home, 'workspace/app')]) chownSync(p, 1000, 1000);
      baselineNames.push(name);
      const b = await timeIt(() => run('docker', [
        'run', '-d', '--name', name, '--hostname', name, '--init', '--user', '1000:1000', '--cap-drop', 'ALL',
        '--security-opt', 'no-new-privileges:true', '--read-only',
        '--tmpfs', '/tmp:rw,exec,nosuid,nodev,size=512m,mode=1777,uid=1000,gid=1000',
        '--tmpfs', '/var/tmp:rw,exec,nosuid,nodev,size=512m,mode=1777,uid=1000,gid=1000',
        '--memory', '256m', '--memory-swap', '256m', '--pids-limit', '1024', '--cpus', '1', '--ulimit', 'nofile=16384:16384',
        '--network', d.network, '-v', `${home}:/home/sandbox`, '--label', 'sandboxed.managed=true', '--label', `sandboxed.instance=${d.instance}`,
        TEST_IMAGE,
      ]));
      if (i >= 0) (api.push(t), cli.push(b));
    }
    const ours = summarize(api);
    const base = summarize(cli);
    return {
      title: 'Create',
      rows: [{
        figure: 'create: `POST /v1/sandboxes` until 201 (container running, workspace seeded)',
        value: ours, baseline: '`docker run -d` of the same image and flags (CLI process)', baselineValue: base, ratio: ratio(ours, base),
      }],
      notes: [`${opts.n} sequential creates on each side (after one warm-up each), alternating; image ${TEST_IMAGE}, 256 MiB memory limit.`],
    };
  } finally {
    for (const name of baselineNames) await run('docker', ['rm', '-f', name]).catch(() => undefined);
    rmSync(join(d.dataDir, 'baseline'), { recursive: true, force: true });
    await d.cleanup();
  }
}
