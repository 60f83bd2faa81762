import { execFile, spawn } from 'node:child_process';
import { request } from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { defaultRuntime, ROOT, startDaemon, type Daemon } from '../support/daemon.ts';

const sh = promisify(execFile);

interface Answer { status: number; body: any; text: string }

/** One request to the API with headers fetch cannot set (Host, Origin, proxy headers), on a fresh connection. */
function raw(d: Daemon, method: string, path: string, headers: Record<string, string>, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: d.port, method, path, headers: { connection: 'close', ...headers }, agent: false }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => {
        let parsed: unknown = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          // not JSON
        }
        resolve({ status: res.statusCode ?? 0, body: parsed, text });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Opens a WebSocket with the given headers (Origin included); answers it, or the status and body it was refused with. */
function openWs(url: string, headers: Record<string, string>): Promise<{ ws?: WebSocket; status?: number; body?: any }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once('open', () => resolve({ ws }));
    ws.once('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(text) }));
    });
    ws.once('error', reject);
  });
}

/** Types into an open terminal and resolves with its output once `pattern` shows up. */
function typeAndWait(ws: WebSocket, line: string, pattern: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`no ${pattern} in terminal output: ${JSON.stringify(out)}`)), 15_000);
    ws.on('message', (data: Buffer, binary: boolean) => {
      if (!binary) return;
      out += data.toString();
      if (pattern.test(out)) {
        clearTimeout(timer);
        resolve(out);
      }
    });
    ws.send(Buffer.from(line));
  });
}

/** Runs the daemon with `env`; answers its exit code and output (it is expected to refuse to start). */
async function refusedStart(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const runtime = defaultRuntime();
  const args = runtime === 'deno' ? ['run', '--allow-all', 'src/main.ts'] : ['--disable-warning=ExperimentalWarning', 'src/main.ts'];
  const proc = spawn(join(ROOT, 'node_modules/.bin', runtime), args, {
    cwd: ROOT, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', SANDBOXED_DATA_DIR: '/tmp/sandboxd-refused-tls', ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  proc.stdout.on('data', (b) => (output += b));
  proc.stderr.on('data', (b) => (output += b));
  const timer = setTimeout(() => proc.kill('SIGKILL'), 30_000);
  const code = await new Promise<number | null>((res) => proc.on('exit', res));
  clearTimeout(timer);
  return { code, output };
}

describe('with auth off (the default), the API obeys no web page', () => {
  let d: Daemon;
  let id: string;
  let host: string;

  beforeAll(async () => {
    d = await startDaemon();
    host = `127.0.0.1:${d.port}`;
    const r = await d.api('POST', '/v1/sandboxes', { name: 'mine' });
    expect(r.status, r.text).toBe(201);
    id = r.body.id;
  });
  afterAll(() => d?.cleanup());

  it('refuses a cross-origin text/plain POST /v1/sandboxes (a form or fetch from any page) and creates nothing', async () => {
    const before = (await d.containers()).length;
    const origins = ['https://evil.example', 'null', `http://s-${id.toLowerCase()}-3000.preview.localhost`, 'http://localhost:3000', `https://127.0.0.1:${d.port}`];
    for (const origin of origins) {
      const r = await raw(d, 'POST', '/v1/sandboxes', { host, origin, 'content-type': 'text/plain' }, '{"name":"csrf"}');
      expect(r.status, origin).toBe(403);
      expect(r.body.error.code, origin).toBe('forbidden_origin');
      expect(r.body.error.message).toContain('SANDBOXD_API_AUTH_DISABLED=false');
    }
    // A no-cors request carries no Origin, but the browser still labels it cross-site.
    const labelled = await raw(d, 'POST', '/sandbox', { host, 'sec-fetch-site': 'cross-site', 'content-type': 'text/plain' }, '{"name":"csrf"}');
    expect(labelled.status).toBe(403);
    expect(labelled.body.error.code).toBe('forbidden_origin');
    const names = (await d.api('GET', '/v1/sandboxes')).body.data.map((s: any) => s.name);
    expect(names).toEqual(['mine']);
    expect((await d.containers()).length).toBe(before);
  });

  it('answers a page served on its own loopback origin, and curl-style requests with no Origin', async () => {
    for (const origin of [`http://127.0.0.1:${d.port}`, `http://localhost:${d.port}`]) {
      const r = await raw(d, 'GET', `/v1/sandboxes/${id}`, { host, origin, 'sec-fetch-site': 'same-origin' });
      expect(r.status, origin).toBe(200);
      expect(r.body.id).toBe(id);
    }
    for (const h of [host, `localhost:${d.port}`, `[::1]:${d.port}`, `127.9.8.7:${d.port}`, `LOCALHOST:${d.port}`]) {
      expect((await raw(d, 'GET', '/v1/sandboxes', { host: h })).status, h).toBe(200);
    }
  });

  it('refuses a rebinding Host (a foreign name resolving to 127.0.0.1), a loopback name on another port, and an absolute target naming another host, with 421', async () => {
    const hosts = [`evil.example:${d.port}`, `127.0.0.1.nip.io:${d.port}`, `localhost.:${d.port}`, `sub.localhost:${d.port}`, `0x7f.1:${d.port}`, `[::ffff:127.0.0.1]:${d.port}`, `127.0.0.1:${d.port + 1}`, '127.0.0.1', 'evil.example'];
    for (const h of hosts) {
      for (const path of ['/v1/sandboxes', '/metrics', '/openapi.json']) {
        const r = await raw(d, 'GET', path, { host: h });
        expect(r.status, `${h} ${path}`).toBe(421);
        expect(r.body.error.code).toBe('misdirected_host');
        expect(r.body.error.message).toContain(`http://127.0.0.1:${d.port}`);
      }
    }
    const absolute = await raw(d, 'GET', `http://evil.example:${d.port}/v1/sandboxes`, { host });
    expect(absolute.status).toBe(421);
    const create = await raw(d, 'POST', '/v1/sandboxes', { host: `evil.example:${d.port}` }, '{"name":"rebound"}');
    expect(create.status).toBe(421);
    expect((await d.api('GET', '/v1/sandboxes')).body.data.map((s: any) => s.name)).toEqual(['mine']);
  });

  it('refuses a request that came through a proxy (Forwarded, X-Forwarded-*, X-Real-IP, Via)', async () => {
    for (const [name, value] of [['forwarded', 'for=203.0.113.9'], ['x-forwarded-for', '203.0.113.9'], ['x-forwarded-host', 'api.example.com'], ['x-forwarded-proto', 'https'], ['x-real-ip', '203.0.113.9'], ['via', '1.1 traefik']]) {
      const r = await raw(d, 'POST', '/v1/sandboxes', { host, [name!]: value! }, '{"name":"proxied"}');
      expect(r.status, name).toBe(403);
      expect(r.body.error.code, name).toBe('forbidden_forwarded');
      expect(r.body.error.message).toContain(name);
    }
    expect((await d.api('GET', '/v1/sandboxes')).body.data.map((s: any) => s.name)).toEqual(['mine']);
  });

  it('keeps /healthz and /readyz open to any Host, Origin or proxy (liveness probes; nothing secret in them)', async () => {
    const headers = { host: 'evil.example', origin: 'https://evil.example', 'x-forwarded-for': '203.0.113.9' };
    expect((await raw(d, 'GET', '/healthz', headers)).text).toBe('ok');
    expect((await raw(d, 'GET', '/readyz', headers)).status).toBe(200);
  });

  it('refuses a cross-origin or rebound WebSocket upgrade to the terminal and exec endpoints, and opens a local one', async () => {
    const base = `ws://127.0.0.1:${d.port}/v1/sandboxes/${id}`;
    for (const path of ['/terminal', '/exec/ws']) {
      for (const origin of ['https://evil.example', 'null', 'http://localhost:3000']) {
        const r = await openWs(`${base}${path}`, { origin });
        expect(r.ws, `${path} ${origin}`).toBeUndefined();
        expect(r.status).toBe(403);
        expect(r.body.error.code).toBe('forbidden_origin');
      }
      const rebound = await openWs(`${base}${path}`, { host: `evil.example:${d.port}` });
      expect(rebound.status, path).toBe(421);
      const proxied = await openWs(`${base}${path}`, { 'x-forwarded-for': '203.0.113.9' });
      expect(proxied.status, path).toBe(403);
    }
    const local = await openWs(`${base}/terminal`, {});
    expect(local.ws).toBeDefined();
    expect(await typeAndWait(local.ws!, 'echo $((6*7))\n', /\r?\n42\r?\n/)).toMatch(/42/);
    local.ws!.close();
  });

  it("runs the README's curl commands verbatim (JSON sent with -d, no content type) against the default config", async () => {
    const run = async (script: string) => (await sh('bash', ['-c', `API=http://127.0.0.1:${d.port}\n${script}`], { timeout: 120_000 })).stdout;
    expect(await run('curl http://127.0.0.1:9090/healthz'.replace(':9090', `:${d.port}`))).toBe('ok');
    const created = (await run(`ID=$(curl -s -XPOST $API/sandbox -H 'content-type: application/json' \\\n  -d '{"ports":[3000]}' | sed -E 's/.*"id":"([^"]+)".*/\\1/')\necho "sandbox: $ID"`)).trim();
    const newId = /^sandbox: ([0-9A-Z]{26})$/.exec(created)?.[1];
    expect(newId, created).toBeDefined();
    const withKey = JSON.parse(await run(`curl -s -XPOST $API/sandbox -d '{"ports":[3000],"env":{"ANTHROPIC_API_KEY":"sk-ant-..."}}'`));
    expect(withKey).toMatchObject({ status: 'running', ports: [3000], env_keys: ['ANTHROPIC_API_KEY'] });
    const exec = JSON.parse(await run(`ID=${newId}\ncurl -XPOST $API/sandbox/$ID/exec -d '{"cmd":["bash","-lc","cd ~/workspace/app && python3 -m http.server 3000"]}'`));
    // The test image has no bash: the daemon ran the command, and the shell said so.
    expect(exec).toMatchObject({ exit_code: expect.any(Number) });
    const task = JSON.parse(await run(`ID=${newId}\ncurl -s -XPOST $API/v1/sandboxes/$ID/tasks -H 'content-type: application/json' -d '{\n  "prompt":"create a Vite app that shows a todo list and run it on port 3000",\n  "agent":"opencode"\n}'`));
    expect(task).toMatchObject({ status: 'running', events_url: `/v1/sandboxes/${newId}/tasks/${task.id}/events` });
    const events = await run(`ID=${newId}\ncurl -N $API/v1/sandboxes/$ID/tasks/${task.id}/events`);
    expect(events).toContain('event: done');
  });
});

describe('with auth on, WebSocket upgrades keep the Origin rule', () => {
  let d: Daemon;
  let id: string;
  const TOKEN = { authorization: 'Bearer alice-secret-0123456789abcdef' };

  beforeAll(async () => {
    // The TLS profile's settings are allowed once auth is on.
    d = await startDaemon({ env: { SANDBOXD_API_AUTH_DISABLED: 'false', SANDBOXD_API_TOKENS: 'alice:alice-secret-0123456789abcdef', PREVIEW_TLS: 'true', PREVIEW_ENTRYPOINT: 'websecure' } });
    const r = await d.api('POST', '/v1/sandboxes', {}, TOKEN);
    expect(r.status, r.text).toBe(201);
    id = r.body.id;
  });
  afterAll(() => d?.cleanup());

  it('refuses a cross-origin upgrade that holds a valid token, and opens a same-origin one', async () => {
    const url = `ws://127.0.0.1:${d.port}/v1/sandboxes/${id}/terminal`;
    for (const origin of ['https://evil.example', 'null', `http://127.0.0.1:${d.port + 1}`]) {
      const r = await openWs(url, { ...TOKEN, origin });
      expect(r.ws, origin).toBeUndefined();
      expect(r.status, origin).toBe(403);
      expect(r.body.error.code).toBe('forbidden_origin');
    }
    // Behind Traefik the Host is the public name and the page's origin is https on it: same origin.
    const proxied = await openWs(url, { ...TOKEN, host: 'api.example.com', origin: 'https://api.example.com' });
    expect(proxied.ws).toBeDefined();
    proxied.ws!.close();
    const same = await openWs(url, { ...TOKEN, origin: `http://127.0.0.1:${d.port}` });
    expect(same.ws).toBeDefined();
    expect(await typeAndWait(same.ws!, 'echo $((6*7))\n', /\r?\n42\r?\n/)).toMatch(/42/);
    same.ws!.close();
  });

  it('still asks a same-origin upgrade without a token for one', async () => {
    const r = await openWs(`ws://127.0.0.1:${d.port}/v1/sandboxes/${id}/terminal`, { origin: `http://127.0.0.1:${d.port}` });
    expect(r.status).toBe(401);
  });

  it('serves HTTP through a proxy and from any Host once auth is on (the token is the defence there)', async () => {
    const r = await raw(d, 'GET', `/v1/sandboxes/${id}`, { ...TOKEN, host: 'api.example.com', 'x-forwarded-for': '203.0.113.9' });
    expect(r.status).toBe(200);
    expect(r.body.id).toBe(id);
  });
});

describe('the TLS profile with auth off', () => {
  it('refuses to start, naming the variables', async () => {
    const envs: Record<string, string>[] = [{ PREVIEW_TLS: 'true' }, { PREVIEW_ENTRYPOINT: 'websecure' }, { PREVIEW_TLS: 'true', PREVIEW_ENTRYPOINT: 'websecure', SANDBOXD_API_AUTH_DISABLED: 'true' }];
    for (const env of envs) {
      const { code, output } = await refusedStart(env);
      expect(code, output).not.toBe(0);
      expect(output).toContain('SANDBOXD_API_AUTH_DISABLED');
      expect(output).toContain(env.PREVIEW_TLS ? 'PREVIEW_TLS=true' : 'PREVIEW_ENTRYPOINT=websecure');
      expect(output).toContain('SANDBOXD_API_TOKENS');
    }
  });
});
