import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSandbox, eventually, execIn, SANDBOX_UID, startDaemon, type Daemon } from '../support/daemon.ts';

/** The process table inside a sandbox, as `ps` shows it. */
async function processes(id: string): Promise<string> {
  return (await execIn(id, ['ps', '-o', 'pid,args'])).output;
}

/** Reads an SSE response, noting when each event arrived. */
async function readSse(res: Response): Promise<{ event: string; data: any; at: number }[]> {
  const events: { event: string; data: any; at: number }[] = [];
  const decoder = new TextDecoder();
  let buf = '';
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(chunk, { stream: true });
    let sep: number;
    while ((sep = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, sep);
      buf = buf.slice(sep + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (event && data) events.push({ event, data: JSON.parse(data), at: Date.now() });
    }
  }
  return events;
}

describe('exec', () => {
  let d: Daemon;
  let id: string;

  beforeAll(async () => {
    d = await startDaemon();
    id = await createSandbox(d);
  });
  afterAll(() => d?.cleanup());

  const exec = (body: unknown, path = `/v1/sandboxes/${id}/exec`) => d.api('POST', path, body);

  it('returns exact stdout, stderr and a non-zero exit code, in ~/workspace/app by default', async () => {
    const r = await exec({ cmd: ['sh', '-c', 'echo out; echo err >&2; pwd; exit 3'] });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ stdout: 'out\n/home/sandbox/workspace/app\n', stderr: 'err\n', exit_code: 3, timed_out: false, truncated: false });
    expect(r.body.duration_ms).toBeGreaterThanOrEqual(0);
  });

  it('runs as the sandbox uid with the sandbox env plus the request env, in the cwd asked for', async () => {
    const r = await exec({ cmd: ['sh', '-c', 'id -u; echo "$GREETING"; pwd'], env: { GREETING: 'hi there' }, cwd: '~/' });
    expect(r.body.stdout).toBe(`${SANDBOX_UID}\nhi there\n/home/sandbox\n`);
  });

  it('feeds stdin and then end-of-file', async () => {
    const r = await exec({ cmd: ['cat'], stdin: 'line one\nline two' });
    expect(r.body.stdout).toBe('line one\nline two');
  });

  it('returns output that is not UTF-8 as base64', async () => {
    const r = await exec({ cmd: ['sh', '-c', 'printf "\\377\\000\\376"'] });
    expect(r.body.encoding).toBe('base64');
    expect(Buffer.from(r.body.stdout, 'base64')).toEqual(Buffer.from([0xff, 0x00, 0xfe]));
  });

  it('caps each stream at 1 MiB and says it truncated', async () => {
    const r = await exec({ cmd: ['sh', '-c', 'head -c 3000000 /dev/zero | tr "\\0" a; echo done >&2'] });
    expect(r.body.stdout.length).toBe(1 << 20);
    expect(r.body.stderr).toBe('done\n');
    expect(r.body.truncated).toBe(true);
    expect(r.body.exit_code).toBe(0);
  });

  it('kills the whole process tree at the timeout and reports it', async () => {
    const r = await exec({ cmd: ['sh', '-c', 'sleep 301 & sleep 302; echo never'], timeout_s: 1 });
    expect(r.body.timed_out).toBe(true);
    expect(r.body.stdout).toBe('');
    const ps = await eventually(async () => !/sleep 30[12]/.test(await processes(id)), 5000);
    expect(ps).toBe(true);
  });

  it('ends a /v1 command whose client disconnects', async () => {
    const ac = new AbortController();
    const pending = fetch(`${d.url}/v1/sandboxes/${id}/exec`, { method: 'POST', body: JSON.stringify({ cmd: ['sleep', '303'], timeout_s: 600 }), signal: ac.signal }).catch(() => undefined);
    expect(await eventually(async () => /sleep 303/.test(await processes(id)), 5000)).toBe(true);
    ac.abort();
    await pending;
    expect(await eventually(async () => !/sleep 303/.test(await processes(id)), 5000)).toBe(true);
  });

  it("keeps the README's exec running after the client hangs up (the quick start's http.server)", async () => {
    const ac = new AbortController();
    const pending = fetch(`${d.url}/sandbox/${id}/exec`, {
      method: 'POST', body: JSON.stringify({ cmd: ['sh', '-lc', 'cd ~/workspace/app && exec httpd -f -p 3001 -h .'] }), signal: ac.signal,
    }).catch(() => undefined);
    expect(await eventually(async () => /httpd -f -p 3001/.test(await processes(id)), 5000)).toBe(true);
    ac.abort();
    await pending;
    await new Promise((r) => setTimeout(r, 1000));
    const ip = (await d.api('GET', `/v1/sandboxes/${id}`)).body.container.ip;
    const page = await fetch(`http://${ip}:3001/index.html`);
    expect(await page.text()).toContain('hello from the sandboxed test image');
  });

  it('answers a cwd that does not exist 400 naming cwd, over SSE an error frame with that code, and starts no process there', async () => {
    const r = await exec({ cmd: ['sh', '-c', 'touch /tmp/bad-cwd-ran'], cwd: 'no/such/dir' });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ code: 'invalid_request', details: { field: 'cwd' } });
    expect(r.body.error.message).toContain('/home/sandbox/workspace/app/no/such/dir');
    expect(r.body.error.message).not.toMatch(/OCI|chdir|config\.json/);
    const res = await fetch(`${d.url}/v1/sandboxes/${id}/exec`, {
      method: 'POST', headers: { accept: 'text/event-stream' }, body: JSON.stringify({ cmd: ['true'], cwd: '/no/such/dir' }),
    });
    const events = await readSse(res);
    expect(events.map((e) => e.event)).toEqual(['error']);
    expect(events[0]!.data.code).toBe('invalid_request');
    const started = await exec({ cmd: ['sleep', '30'], cwd: '/no/such/dir', detach: true });
    expect(started.status).toBe(400);
    expect(started.body.error.details).toMatchObject({ field: 'cwd' });
    expect((await exec({ cmd: ['sh', '-c', 'test -e /tmp/bad-cwd-ran && echo ran || echo not'] })).body.stdout).toBe('not\n');
  });

  it('streams each line over SSE before the command ends, then an exit frame', async () => {
    const t0 = Date.now();
    const res = await fetch(`${d.url}/v1/sandboxes/${id}/exec`, {
      method: 'POST', headers: { accept: 'text/event-stream' },
      body: JSON.stringify({ cmd: ['sh', '-c', 'for i in 1 2 3 4 5; do echo line $i; sleep 0.1; done'] }),
    });
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    const events = await readSse(res);
    const lines = events.filter((e) => e.event === 'stdout');
    expect(lines.map((e) => e.data.data).join('')).toBe('line 1\nline 2\nline 3\nline 4\nline 5\n');
    const exit = events.at(-1)!;
    expect(exit.event).toBe('exit');
    expect(exit.data.exit_code).toBe(0);
    // The first line reached us well before the command finished (~500 ms of sleeps).
    expect(lines[0]!.at - t0).toBeLessThan(exit.at - t0 - 250);
  });

  it('delivers the output printed just before exit on every streamed run', async () => {
    for (let i = 0; i < 15; i++) {
      const res = await fetch(`${d.url}/v1/sandboxes/${id}/exec`, {
        method: 'POST', headers: { accept: 'text/event-stream' }, body: JSON.stringify({ cmd: ['sh', '-c', `echo first; sleep 0.05; echo last-${i}`] }),
      });
      const events = await readSse(res);
      expect(events.filter((e) => e.event === 'stdout').map((e) => e.data.data).join(''), `run ${i}`).toBe(`first\nlast-${i}\n`);
    }
  });

  it('wakes a stopped sandbox to run a command and says so', async () => {
    expect((await d.api('POST', `/v1/sandboxes/${id}/stop`)).body.status).toBe('stopped');
    const r = await exec({ cmd: ['echo', 'awake'] });
    expect(r.body).toMatchObject({ stdout: 'awake\n', exit_code: 0, wake: true });
    expect((await d.api('GET', `/v1/sandboxes/${id}`)).body.status).toBe('running');
  });

  it('leaves /tmp writable by the sandbox user after a stop and start', async () => {
    await d.api('POST', `/v1/sandboxes/${id}/stop`);
    await d.api('POST', `/v1/sandboxes/${id}/start`);
    const r = await exec({ cmd: ['sh', '-c', 'echo ok > /tmp/probe && echo ok > /var/tmp/probe && cat /tmp/probe'] });
    expect(r.body).toMatchObject({ stdout: 'ok\n', exit_code: 0 });
  });

  it('refuses a bad request before running anything', async () => {
    for (const body of [{}, { cmd: [] }, { cmd: 'ls' }, { cmd: ['ls'], timeout_s: 0 }, { cmd: ['ls'], env: { 'a-b': '1' } }, { cmd: ['ls'], bogus: 1 }]) {
      const r = await exec(body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.error.code).toBe('invalid_request');
      expect(r.body.error.message).toMatch(/^body/);
    }
    expect((await exec({ cmd: ['ls'] }, '/v1/sandboxes/01ARZ3NDEKTSV4RRFFQ69G5FAV/exec')).status).toBe(404);
  });
});
