import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Daemon, docker, ROOT, startDaemon, TEST_IMAGE } from '../support/daemon.ts';

// Every run is aimed at things this file made: its own instance names, compose project, image namespace
// and temp dirs. SANDBOXD_HOST_FIREWALL=false keeps the host rule other test daemons share.
const tag = randomBytes(4).toString('hex');
const instance = `tu${tag}`;
const other = `tv${tag}`;
const ns = `sbxu${tag}`;
const foreignNs = `sbxf${tag}`;
const root = mkdtempSync('/tmp/sbxu-');
const made = { containers: [] as string[], networks: [] as string[], images: [] as string[], mounts: [] as string[] };

interface Run { code: number | null; out: string; err: string }

/** Runs the real uninstall.sh with the test's scoping variables (and `env` on top). */
function uninstall(args: string[], env: Record<string, string>): Promise<Run> {
  return new Promise((resolve, reject) => {
    const p = spawn(join(ROOT, 'uninstall.sh'), args, {
      env: {
        PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', HOME: process.env.HOME ?? '/root',
        SANDBOXD_INSTANCE: instance, COMPOSE_PROJECT_NAME: `sbxu${tag}`, SANDBOXED_IMAGE_NAMESPACE: ns,
        SANDBOXD_HOST_FIREWALL: 'false', SANDBOXD_NETWORK: `sbxu-net-${tag}`, ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('error', reject);
    p.on('exit', (code) => resolve({ code, out, err }));
  });
}

const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8' });
const mounted = (dir: string) => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4]?.startsWith(dir));
const exists = async (thing: { inspect(): Promise<unknown> }) => thing.inspect().then(() => true, (e: { statusCode?: number }) => (e.statusCode === 404 ? false : Promise.reject(e)));

/** Builds a throwaway image FROM the test image with `labels`, tagged `tagName`; answers its id. */
function build(tagName: string, labels: Record<string, string>): string {
  const ctx = mkdtempSync(join(root, 'ctx-'));
  writeFileSync(join(ctx, 'Dockerfile'), `FROM ${TEST_IMAGE}\n`);
  const flags = Object.entries(labels).flatMap(([k, v]) => ['--label', `${k}=${v}`]);
  execFileSync('docker', ['build', '-q', ...flags, '-t', tagName, ctx], { env: { ...process.env, DOCKER_BUILDKIT: '0' }, stdio: 'ignore' });
  const id = sh('docker', ['image', 'inspect', '-f', '{{.Id}}', tagName]).trim();
  made.images.push(id);
  return id;
}

afterAll(async () => {
  for (const m of made.mounts.reverse()) if (mounted(m)) sh('umount', ['-l', m]);
  for (const c of made.containers) await docker.getContainer(c).remove({ force: true }).catch(() => undefined);
  for (const n of made.networks) await docker.getNetwork(n).remove().catch(() => undefined);
  for (const i of made.images.reverse()) await docker.getImage(i).remove({ force: true }).catch(() => undefined);
  rmSync(root, { recursive: true, force: true });
});

describe('uninstall.sh --data refuses what is not its own', () => {
  it('refuses /, //, /var/lib/, /home/, /root, a link to /home, a .. path, an unmarked dir and another instance\'s dir, deleting nothing', async () => {
    // Inside a throwaway container (the checkout mounted read-only): if a refusal ever failed, only the
    // container's own files could go. Sentinels show whether anything was touched.
    const script = `
      mkdir -p /home/keep /var/lib/keep /opt/t/nomark/workspaces /opt/t/othermark/workspaces
      touch /home/keep/f /var/lib/keep/f /opt/t/nomark/sandboxed.db /opt/t/othermark/sandboxed.db
      printf 'instance=someone-else\\nversion=1\\n' > /opt/t/othermark/.sandboxed-data
      ln -s /home /opt/t/tohome
      for d in / // /var/lib/ /home/ /root /opt/t/tohome /opt/t/nomark/../nomark /opt/t/nomark /opt/t/othermark; do
        SANDBOXED_DATA_DIR=$d SANDBOXD_INSTANCE=${instance} /src/uninstall.sh --data --yes >/tmp/out 2>/tmp/err
        echo "RESULT $d $? $(base64 -w0 /tmp/out) $(base64 -w0 /tmp/err)"
      done
      ls /home/keep/f /var/lib/keep/f /opt/t/nomark/sandboxed.db /opt/t/nomark/workspaces /opt/t/othermark/sandboxed.db /opt/t/othermark/.sandboxed-data /bin/sh >/dev/null && echo SURVIVED`;
    const output = sh('docker', ['run', '--rm', '--network', 'none', '--user', '0', '-v', `${ROOT}:/src:ro`, '--entrypoint', 'bash', 'sandboxed/sandbox:latest', '-c', script]);
    const results = new Map(output.split('\n').filter((l) => l.startsWith('RESULT ')).map((l) => {
      const [, dir, code, out, err] = l.split(' ');
      return [dir!, { code: Number(code), out: Buffer.from(out ?? '', 'base64').toString(), err: Buffer.from(err ?? '', 'base64').toString() }];
    }));
    const why: Record<string, RegExp> = {
      '/': /\/: it is a system directory/,
      '//': /\/\/: it is a system directory/,
      '/var/lib/': /\/var\/lib\/: it is a system directory/,
      '/home/': /\/home\/: it is a system directory/,
      '/root': /\/root: it is a system directory/,
      '/opt/t/tohome': /\/opt\/t\/tohome: it resolves to the system directory \/home/,
      '/opt/t/nomark/../nomark': /'\.\.' components/,
      '/opt/t/nomark': /\/opt\/t\/nomark: it has no \.sandboxed-data marker/,
      '/opt/t/othermark': /\/opt\/t\/othermark: its \.sandboxed-data belongs to instance 'someone-else', not to SANDBOXD_INSTANCE/,
    };
    expect([...results.keys()].sort()).toEqual(Object.keys(why).sort());
    for (const [dir, re] of Object.entries(why)) {
      const r = results.get(dir)!;
      expect({ dir, code: r.code }).toEqual({ dir, code: 1 });
      expect(r.err).toMatch(/^error: refusing to delete the data directory /);
      expect(r.err).toMatch(re);
      // Refused before any step ran: no container, network or image was looked at.
      expect(r.out).not.toMatch(/==> (the compose stack|containers|data:)/);
    }
    expect(output).toContain('SURVIVED');
  });
});

describe('uninstall.sh removes only what its instance made', () => {
  it('deletes our entries (unmounting a loop-mounted workspace), leaves foreign files, a link target, the dir and another instance\'s container and network', async () => {
    const data = join(root, 'data');
    const outside = join(root, 'outside');
    mkdirSync(join(data, 'workspaces/A/workspace'), { recursive: true });
    mkdirSync(join(data, 'spool'));
    mkdirSync(join(data, 'backup'));
    mkdirSync(outside);
    writeFileSync(join(outside, 'precious'), 'keep me');
    writeFileSync(join(data, '.sandboxed-data'), `instance=${instance}\nversion=1\n`);
    for (const f of ['sandboxed.db', 'sandboxed.db-wal', 'sandboxed.db-shm', 'preview-token.key', 'secrets.key', '.sandboxd-reserve', 'spool/upload-1', 'workspaces/A/workspace/index.js']) writeFileSync(join(data, f), 'ours');
    symlinkSync(outside, join(data, 'workspaces/A/workspace/escape'));
    writeFileSync(join(data, 'notes.txt'), 'foreign');
    writeFileSync(join(data, 'backup/db.sql'), 'foreign');
    // A workspace as the disk-quota code makes them: a filesystem image loop-mounted nosuid,nodev.
    const img = join(data, 'workspaces/B.img');
    const mnt = join(data, 'workspaces/B');
    sh('truncate', ['-s', '16M', img]);
    sh('mkfs.ext4', ['-q', '-F', img]);
    mkdirSync(mnt);
    sh('mount', ['-o', 'loop,nosuid,nodev', img, mnt]);
    made.mounts.push(mnt);
    writeFileSync(join(mnt, 'file'), 'ours');
    expect(mounted(mnt)).toBe(true);

    for (const [name, inst] of [[`sbxu-ours-${tag}`, instance], [`sbxu-other-${tag}`, other]] as const) {
      const labels = { 'sandboxed.managed': 'true', 'sandboxed.instance': inst };
      await docker.createContainer({ name, Image: TEST_IMAGE, Labels: labels });
      made.containers.push(name);
      await docker.createNetwork({ Name: `${name}-net`, Labels: labels });
      made.networks.push(`${name}-net`);
    }

    const r = await uninstall(['--data', '--yes'], { SANDBOXED_DATA_DIR: data });
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    for (const f of ['.sandboxed-data', 'sandboxed.db', 'sandboxed.db-wal', 'sandboxed.db-shm', 'preview-token.key', 'secrets.key', '.sandboxd-reserve', 'spool', 'workspaces']) {
      expect({ f, exists: existsSync(join(data, f)) }).toEqual({ f, exists: false });
    }
    expect(mounted(mnt)).toBe(false);
    expect(sh('losetup', ['-a'])).not.toContain(img);
    expect(readFileSync(join(data, 'notes.txt'), 'utf8')).toBe('foreign');
    expect(readFileSync(join(data, 'backup/db.sql'), 'utf8')).toBe('foreign');
    expect(readFileSync(join(outside, 'precious'), 'utf8')).toBe('keep me');
    expect(r.out).toContain(`removed mount ${mnt}`);
    expect(r.out).toContain(`kept ${data}: it holds files sandboxed did not create: backup notes.txt`);

    expect(await exists(docker.getContainer(`sbxu-ours-${tag}`))).toBe(false);
    expect(await exists(docker.getNetwork(`sbxu-ours-${tag}-net`))).toBe(false);
    expect(await exists(docker.getContainer(`sbxu-other-${tag}`))).toBe(true);
    expect(await exists(docker.getNetwork(`sbxu-other-${tag}-net`))).toBe(true);

    // Idempotent: a second run succeeds and says nothing of ours is left.
    const again = await uninstall(['--data', '--yes'], { SANDBOXED_DATA_DIR: data });
    expect(again.code).toBe(0);
    expect(again.out).toContain(`nothing of sandboxed's left in ${data}`);
    expect(again.out).toMatch(/containers of instance .*\n {4}nothing left/);
    expect(existsSync(join(data, 'notes.txt'))).toBe(true);
    expect(await exists(docker.getContainer(`sbxu-other-${tag}`))).toBe(true);
  });

  it('removes the older untagged builds of our images with the tagged ones, and no foreign image', async () => {
    const older = build(`${ns}/app:latest`, { [`${ns}.inputs`]: '1' });
    const current = build(`${ns}/app:latest`, { [`${ns}.inputs`]: '2' });
    const foreign = build(`${foreignNs}/app:latest`, { 'other.inputs': '1' });
    const alsoForeign = build(`${foreignNs}/kept:latest`, { [`${ns}.inputs`]: '3' });
    expect(sh('docker', ['image', 'inspect', '-f', '{{len .RepoTags}}', older]).trim()).toBe('0');

    // The dry run names exactly the throwaway images before anything real is removed.
    const dry = await uninstall(['--images', '--dry-run'], { SANDBOXED_DATA_DIR: join(root, 'none') });
    expect(dry.code).toBe(0);
    const wouldGo = [...dry.out.matchAll(/would remove image (\S+)/g)].map((m) => m[1]).sort();
    expect(wouldGo).toEqual([`${ns}/app:latest`, older, current].sort());

    const r = await uninstall(['--images', '--yes'], { SANDBOXED_DATA_DIR: join(root, 'none') });
    expect(r.code).toBe(0);
    expect(await exists(docker.getImage(older))).toBe(false);
    expect(await exists(docker.getImage(current))).toBe(false);
    expect(await exists(docker.getImage(foreign))).toBe(true);
    expect(await exists(docker.getImage(alsoForeign))).toBe(true);
    expect(r.out).toContain(`kept image ${alsoForeign}: also tagged ${foreignNs}/kept:latest`);
    expect(await exists(docker.getImage(TEST_IMAGE))).toBe(true);

    const again = await uninstall(['--images', '--yes'], { SANDBOXED_DATA_DIR: join(root, 'none') });
    expect(again.code).toBe(0);
    expect(again.out).not.toContain('removed image');
  });

  it('a real daemon marks its data dir, refuses another instance\'s, and uninstall leaves nothing of it', async () => {
    const d = await startDaemon();
    try {
      expect(readFileSync(join(d.dataDir, '.sandboxed-data'), 'utf8')).toBe(`instance=${d.instance}\nversion=1\n`);
      await d.stop();
      const intruder = new Daemon({ reuse: d, env: { SANDBOXD_INSTANCE: other } });
      await expect(intruder.start()).rejects.toThrow(new RegExp(`belongs to instance '${d.instance}'`));
      const chain = `SANDBOXD-${createHash('sha256').update(d.network).digest('hex').slice(0, 10)}`;
      expect(sh('iptables', ['-S'])).toContain(`-N ${chain}`);
      const r = await uninstall(['--data', '--yes'], { SANDBOXED_DATA_DIR: d.dataDir, SANDBOXD_INSTANCE: d.instance, SANDBOXD_NETWORK: d.network });
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
      expect(r.out).toContain(`removed directory ${d.dataDir}`);
      expect(existsSync(d.dataDir)).toBe(false);
      expect(await exists(docker.getNetwork(d.network))).toBe(false);
      // Its egress chains went with it, in both families, and no jump into them is left.
      expect(sh('iptables', ['-S'])).not.toContain(chain);
      expect(sh('ip6tables', ['-S'])).not.toContain(chain);
      expect(r.out).toContain(`removed iptables chain ${chain}`);
    } finally {
      await d.cleanup();
    }
  });
});
