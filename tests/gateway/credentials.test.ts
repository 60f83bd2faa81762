import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { docker, eventually, execIn, startDaemon, type Daemon } from '../support/daemon.ts';

const ALICE_SECRET = 'alice-secret-credentials-1';
const ROOT_SECRET = 'root-secret-credentials-22';
const TOKENS = `alice:${ALICE_SECRET},root:${ROOT_SECRET}:admin`;
const ALICE = { authorization: `Bearer ${ALICE_SECRET}` };
const APP = '/home/sandbox/workspace/app';

/** What reaches the app: a CGI that echoes the request's credentials-bearing parts, and sets cookies of its own. */
const HEADS_CGI = `#!/bin/sh
printf 'Content-Type: text/plain\\r\\n'
printf 'Set-Cookie: a=1; Domain=preview.localhost; Path=/\\r\\n'
printf 'Set-Cookie: b=2; path=/; domain=.localhost; HttpOnly\\r\\n'
printf 'Set-Cookie: c=3; Path=/\\r\\n'
printf 'Set-Cookie: sandboxed_preview=planted; Domain=preview.localhost\\r\\n\\r\\n'
echo "auth=$HTTP_AUTHORIZATION"
echo "cookie=$HTTP_COOKIE"
echo "query=$QUERY_STRING"
`;

/** Runs a command in the sandbox in the background (Docker exec, detached). */
async function detach(sandboxId: string, script: string): Promise<void> {
  const exec = await docker.getContainer(`s-${sandboxId}`).exec({ Cmd: ['sh', '-c', script] });
  await exec.start({ Detach: true });
}

/** Sends raw request bytes to the gateway and answers everything it sent back. */
function raw(port: number, text: string): Promise<string> {
  return new Promise((resolve) => {
    const sock = connect({ host: '127.0.0.1', port });
    let got = '';
    sock.setTimeout(20_000, () => sock.destroy());
    sock.on('data', (c) => (got += c));
    sock.on('close', () => resolve(got));
    sock.on('error', () => undefined);
    sock.write(text);
  });
}

describe('preview credentials', () => {
  let d: Daemon;
  let id: string;
  let token: string;
  const host = (port: number) => `s-${id.toLowerCase()}-${port}.preview.localhost`;
  const heads = async (port: number, path: string, headers: Record<string, string> = {}) => {
    const r = await d.gateway(host(port), path, { headers });
    expect(r.status, r.body).toBe(200);
    return r.body;
  };

  beforeAll(async () => {
    d = await startDaemon({ env: { SANDBOXD_API_AUTH_DISABLED: 'false', SANDBOXD_API_TOKENS: TOKENS } });
    const r = await d.api('POST', '/v1/sandboxes', { ports: [3000, 3001, 3002], port_visibility: { '3001': 'private' } }, ALICE);
    id = r.body.id;
    await d.api('PUT', `/v1/sandboxes/${id}/files`, { path: 'cgi-bin/heads', content: HEADS_CGI }, ALICE);
    await execIn(id, ['chmod', '755', `${APP}/cgi-bin/heads`]);
    await detach(id, `exec httpd -f -p 3001 -h ${APP}`);
    token = (await d.api('POST', `/v1/sandboxes/${id}/preview-tokens`, {}, ALICE)).body.token;
    expect(await eventually(async () => (await d.gateway(host(3001), '/index.html', { headers: ALICE })).status === 200, 10_000)).toBe(true);
  });
  afterAll(() => d?.cleanup());

  it('removes our API tokens (header or query) and the preview cookie on a public preview, and passes the app its own', async () => {
    expect(await heads(3000, '/cgi-bin/heads', ALICE)).toMatch(/^auth=\n/);
    expect(await heads(3000, '/cgi-bin/heads', { authorization: `bearer \t${ROOT_SECRET}` })).toMatch(/^auth=\n/);
    // Control: an app's own Bearer token, and one that merely starts like ours, do reach it.
    expect(await heads(3000, '/cgi-bin/heads', { authorization: 'Bearer app-own-token' })).toContain('auth=Bearer app-own-token\n');
    expect(await heads(3000, '/cgi-bin/heads', { authorization: `Bearer ${ALICE_SECRET}x` })).toContain(`auth=Bearer ${ALICE_SECRET}x\n`);
    const q = await heads(3000, `/cgi-bin/heads?x=1&token=${ALICE_SECRET}&%74oken=${ROOT_SECRET}&token=app-own&tok%65n=${encodeURIComponent(ALICE_SECRET)}&y=2`);
    expect(q).toContain('query=x=1&token=app-own&y=2\n');
    expect(q).not.toContain(ALICE_SECRET);
    expect(await heads(3000, `/cgi-bin/heads?token=${ALICE_SECRET}`)).toContain('query=\n');
    const c = await heads(3000, '/cgi-bin/heads', { cookie: `app=1; sandboxed_preview=${token}; __Host-sandboxed_preview=${token}; other=2` });
    expect(c).toContain('cookie=app=1; other=2\n');
    // A stripped request that the gateway answers itself (nothing listens on 3002 yet) is an ordinary page, not a 500.
    const none = await d.gateway(host(3002), '/', { headers: { ...ALICE, accept: 'text/html', cookie: `sandboxed_preview=${token}` } });
    expect(none.status).toBe(502);
    expect(none.body).toMatch(/Nothing is listening yet/);
  });

  it('removes our API token and the preview cookie on a private preview, opened either way', async () => {
    const viaCookie = await heads(3001, '/cgi-bin/heads?z=1', { cookie: `sandboxed_preview=${token}; app=3`, authorization: `Bearer ${ROOT_SECRET}` });
    expect(viaCookie).toContain('auth=\ncookie=app=3\nquery=z=1\n');
    // An API token as ?token= is not a preview token: refused, so it reaches the app no more than the rest.
    const asQuery = await d.gateway(host(3001), `/cgi-bin/heads?token=${ALICE_SECRET}`, { headers: { cookie: `sandboxed_preview=${token}` } });
    expect(asQuery.status).toBe(401);
    expect(asQuery.body).not.toContain('auth=');
    const viaApi = await heads(3001, '/cgi-bin/heads', ALICE);
    expect(viaApi).toMatch(/^auth=\ncookie=\n/);
  });

  it('removes our API token and the preview cookie from a WebSocket upgrade before the app sees it', async () => {
    // busybox httpd refuses the upgrade by running the CGI: the gateway relays that answer, which shows what the app got.
    // On the private port a ?token= must be a preview token (else 401, see above): there the API token rides in the header only.
    for (const [port, query] of [[3000, `token=${ALICE_SECRET}&v=1`], [3001, 'v=1']] as const) {
      const answer = await raw(d.gatewayPort, `GET /cgi-bin/heads?${query} HTTP/1.1\r\nHost: ${host(port)}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer ${ALICE_SECRET}\r\nCookie: app=9; sandboxed_preview=${token}\r\n\r\n`);
      expect(answer, String(port)).toMatch(/^HTTP\/1\.1 200 /);
      expect(answer, String(port)).toContain('\nauth=\ncookie=app=9\nquery=v=1\n');
      expect(answer, String(port)).not.toMatch(/domain=/i);
    }
  });

  it('opens a private preview with a valid cookie behind a junk one of the same name, and not with junk alone', async () => {
    expect((await d.gateway(host(3001), '/index.html', { headers: { cookie: `sandboxed_preview=junk.value; sandboxed_preview=${token}` } })).status).toBe(200);
    expect((await d.gateway(host(3001), '/index.html', { headers: { cookie: `sandboxed_preview=${token.slice(0, -4)}AAAA; sandboxed_preview=${token}` } })).status).toBe(200);
    expect((await d.gateway(host(3001), '/index.html', { headers: { cookie: 'sandboxed_preview=junk.value' } })).status).toBe(401);
  });

  it('answers every off-site redirect attempt with a same-origin Location that has exactly one leading slash', async () => {
    const attempts = ['/.//evil.example', '//evil.example', '/\\evil.example', '/\\\\evil.example', '/./\\evil.example', '/%2e//evil.example', '/.%2E//evil.example',
      '/..//evil.example', '/%2e%2e//evil.example', '/x/..//evil.example', '/x/../..//evil.example', '/%2F%2Fevil.example', '/%5C%5Cevil.example', '///\\//evil.example', '/././/./evil.example'];
    for (const path of attempts) {
      const answer = await raw(d.gatewayPort, `GET ${path}?token=${token}&a=1 HTTP/1.1\r\nHost: ${host(3001)}\r\nConnection: close\r\n\r\n`);
      expect(answer, path).toMatch(/^HTTP\/1\.1 302 /);
      const location = /\r\nlocation: ([^\r]*)\r\n/i.exec(answer)![1]!;
      expect(location, path).toMatch(/^\/(?![/\\])/);
      const base = `http://${host(3001)}/`;
      const resolved = new URL(location, base);
      expect(resolved.origin, path).toBe(new URL(base).origin);
      // Not even one more relative step away: the path a browser lands on does not start with `//` either.
      expect(resolved.pathname, path).toMatch(/^\/(?!\/)/);
      expect(resolved.search, path).toBe('?a=1');
    }
  });

  it("makes an app's Set-Cookie with Domain=preview.<domain> (or a parent) host-only, and drops one naming the preview cookie", async () => {
    const r = await d.gateway(host(3000), '/cgi-bin/heads');
    const cookies = r.headers['set-cookie'] as string[];
    expect(cookies).toEqual(['a=1; Path=/', 'b=2; path=/; HttpOnly', 'c=3; Path=/']);
  });
});

describe('preview cookie over TLS (PREVIEW_TLS=true)', () => {
  let d: Daemon;
  let id: string;
  const host = () => `s-${id.toLowerCase()}-3000.preview.localhost`;

  beforeAll(async () => {
    d = await startDaemon({ env: { SANDBOXD_API_AUTH_DISABLED: 'false', SANDBOXD_API_TOKENS: TOKENS, PREVIEW_TLS: 'true' } });
    id = (await d.api('POST', '/v1/sandboxes', { visibility: 'private' }, ALICE)).body.id;
  });
  afterAll(() => d?.cleanup());

  it('sets a __Host- cookie (Secure, Path=/, no Domain) that opens the preview, and ignores the plain name', async () => {
    const { token } = (await d.api('POST', `/v1/sandboxes/${id}/preview-tokens`, {}, ALICE)).body;
    const swap = await d.gateway(host(), `/index.html?token=${token}`);
    expect(swap.status).toBe(302);
    const cookie = (swap.headers['set-cookie'] as string[])[0]!;
    expect(cookie).toMatch(/^__Host-sandboxed_preview=[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+; Path=\/; Max-Age=\d+; HttpOnly; SameSite=Lax; Secure$/);
    expect(cookie).not.toMatch(/Domain/i);
    const pair = cookie.split(';')[0]!;
    expect((await d.gateway(host(), '/index.html', { headers: { cookie: `__Host-sandboxed_preview=junk.value; ${pair}` } })).status).toBe(200);
    // A sibling subdomain can set the plain name for the whole preview domain; over TLS it opens nothing.
    expect((await d.gateway(host(), '/index.html', { headers: { cookie: `sandboxed_preview=${token}` } })).status).toBe(401);
  });
});
