import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSandbox, eventually, startDaemon, type Daemon } from '../support/daemon.ts';

describe('R7 abuse inside one sandbox', () => {
  let d: Daemon;
  beforeAll(async () => (d = await startDaemon({ env: { SANDBOXD_DEFAULT_PIDS: '256' } })));
  afterAll(() => d?.cleanup());

  it('a fork bomb, a memory hog and a /tmp filler in one sandbox leave another serving its preview and the API answering', async () => {
    const abuser = await createSandbox(d);
    const victim = await createSandbox(d);
    const host = `s-${victim.toLowerCase()}-3000.preview.localhost`;
    // The app in a new sandbox takes a moment to listen.
    expect(await eventually(async () => (await d.gateway(host, '/')).status === 200)).toBe(true);

    // One launch starts all three: once the fork bomb holds every pid (or the hog every byte), nothing else could start.
    const abuse = [
      'dd if=/dev/zero of=/tmp/fill bs=1M &',
      `sh -c 'x=aaaaaaaaaaaaaaaa; while :; do x="$x$x"; done' &`,
      'f() { f | f & }; f',
    ].join('\n');
    const launched = await d.api('POST', `/v1/sandboxes/${abuser}/exec`, { cmd: ['sh', '-c', abuse], detach: true });
    expect(launched.status, launched.text).toBe(202);

    // For 8 s, the neighbour's preview and the API are asked back to back; every answer must be right.
    const failures: string[] = [];
    let answered = 0;
    const end = Date.now() + 8000;
    while (Date.now() < end) {
      const [preview, health, get] = await Promise.all([
        d.gateway(host, '/').catch((e: Error) => ({ status: 0, body: e.message })),
        fetch(`${d.url}/healthz`).then((r) => r.status, () => 0),
        d.api('GET', `/v1/sandboxes/${victim}`).then((r) => r.status, () => 0),
      ]);
      answered++;
      if (preview.status !== 200) failures.push(`preview ${preview.status}`);
      if (health !== 200) failures.push(`healthz ${health}`);
      if (get !== 200) failures.push(`get ${get}`);
    }
    expect(failures).toEqual([]);
    expect(answered).toBeGreaterThan(10);

    // The abuse stayed inside: the neighbour still runs, the abuser's pids are capped, the host can still fork.
    expect((await d.api('GET', `/v1/sandboxes/${victim}`)).body.status).toBe('running');
    const abused = (await d.api('GET', `/v1/sandboxes/${abuser}`)).body;
    expect(['running', 'stopped']).toContain(abused.status);
    if (abused.status === 'running') {
      const pids = await d.api('POST', `/v1/sandboxes/${abuser}/exec`, { cmd: ['cat', '/sys/fs/cgroup/pids.current'] });
      if (pids.status === 200 && pids.body.exit_code === 0) expect(Number(pids.body.stdout)).toBeLessThanOrEqual(256);
    }
    expect((await d.api('POST', '/v1/sandboxes', {})).status).toBe(201);
  }, 120_000);
});
