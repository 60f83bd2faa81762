import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startDaemon, type Daemon } from '../support/daemon.ts';

const ALICE = { authorization: 'Bearer alice-secret-1' };
const BOB = { authorization: 'Bearer bob-secret-22' };
const ROOT = { authorization: 'Bearer root-secret-333' };

describe('private previews', () => {
  let d: Daemon;
  let a: string;
  let b: string;
  const host = (id: string, port = 3000) => `s-${id.toLowerCase()}-${port}.preview.localhost`;
  const mint = async (id: string, body: object = {}) => (await d.api('POST', `/v1/sandboxes/${id}/preview-tokens`, body, ALICE)).body;

  beforeAll(async () => {
    d = await startDaemon({ env: { SANDBOXD_API_AUTH_DISABLED: 'false', SANDBOXD_API_TOKENS: 'alice:alice-secret-1,bob:bob-secret-22,root:root-secret-333:admin' } });
    a = (await d.api('POST', '/v1/sandboxes', { ports: [3000, 3001], visibility: 'private', port_visibility: { '3001': 'public' } }, ALICE)).body.id;
    b = (await d.api('POST', '/v1/sandboxes', { visibility: 'private' }, ALICE)).body.id;
  });
  afterAll(() => d?.cleanup());

  it('answers a request without a token with 401: a page for browsers, the error envelope for others', async () => {
    const browser = await d.gateway(host(a), '/index.html', { headers: { accept: 'text/html' } });
    expect(browser.status).toBe(401);
    expect(browser.body).toMatch(/This preview is private/);
    const api = await d.gateway(host(a), '/index.html');
    expect(JSON.parse(api.body).error.code).toBe('unauthorized');
  });

  it('swaps a valid ?token= for an HttpOnly cookie scoped to that preview host, which then opens the app', async () => {
    const { token, urls } = await mint(a);
    expect(urls['3000']).toBe(`http://${host(a)}:${d.gatewayPort}/?token=${token}`);
    const swap = await d.gateway(host(a), `/index.html?x=1&token=${token}`);
    expect(swap.status).toBe(302);
    expect(swap.headers.location).toBe('/index.html?x=1');
    const cookie = (swap.headers['set-cookie'] as string[])[0]!;
    expect(cookie).toMatch(/^sandboxed_preview=[^;]+; Path=\/; Max-Age=\d+; HttpOnly; SameSite=Lax$/);
    expect(cookie).not.toMatch(/Domain=/i);
    const page = await d.gateway(host(a), '/index.html', { headers: { cookie: cookie.split(';')[0]! } });
    expect(page.status).toBe(200);
    expect(page.body).toContain('hello from the sandboxed test image');
  });

  it("refuses a token or cookie of sandbox A on sandbox B, an expired token, and a token bound to another port", async () => {
    const { token } = await mint(a);
    expect((await d.gateway(host(b), `/?token=${token}`)).status).toBe(401);
    expect((await d.gateway(host(b), '/', { headers: { cookie: `sandboxed_preview=${token}` } })).status).toBe(401);
    const short = await mint(a, { ttl_s: 1 });
    // Expiry has a one-second grain: poll past it rather than sleep a guessed margin.
    expect(await eventually(async () => (await d.gateway(host(a), `/?token=${short.token}`)).status === 401, 5000, 100)).toBe(true);
    expect((await d.gateway(host(a), '/', { headers: { cookie: `sandboxed_preview=${short.token}` } })).status).toBe(401);
    const bound = await mint(b, { port: 3000 });
    expect((await d.gateway(host(b), '/', { headers: { cookie: `sandboxed_preview=${bound.token}` } })).status).toBe(200);
    expect((await d.gateway(host(a), '/', { headers: { cookie: `sandboxed_preview=${bound.token}` } })).status).toBe(401);
    expect((await d.gateway(host(a), '/', { headers: { cookie: `sandboxed_preview=${token.slice(0, -2)}xx` } })).status).toBe(401);
  });

  it("opens with the owner's or an admin's API token, not another tenant's", async () => {
    expect((await d.gateway(host(a), '/index.html', { headers: ALICE })).status).toBe(200);
    expect((await d.gateway(host(a), '/index.html', { headers: ROOT })).status).toBe(200);
    expect((await d.gateway(host(a), '/index.html', { headers: BOB })).status).toBe(401);
    expect((await d.api('POST', `/v1/sandboxes/${a}/preview-tokens`, {}, BOB)).status).toBe(404);
  });

  it('never passes the API token or the preview cookie on to the app', async () => {
    const cgi = '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\n"\necho "auth=$HTTP_AUTHORIZATION"\necho "cookie=$HTTP_COOKIE"\n';
    await d.api('PUT', `/v1/sandboxes/${a}/files`, { path: 'cgi-bin/env', content: cgi }, ALICE);
    await d.api('POST', `/v1/sandboxes/${a}/exec`, { cmd: ['chmod', '755', 'cgi-bin/env'] }, ALICE);
    const { token } = await mint(a);
    const viaApi = await d.gateway(host(a), '/cgi-bin/env', { headers: { ...ALICE, cookie: 'app=1' } });
    expect(viaApi.body).toBe('auth=\ncookie=app=1\n');
    const viaCookie = await d.gateway(host(a), '/cgi-bin/env', { headers: { cookie: `app=2; sandboxed_preview=${token}` } });
    expect(viaCookie.body).toBe('auth=\ncookie=app=2\n');
  });

  it('serves a port made public by port_visibility without a token', async () => {
    await d.api('POST', `/v1/sandboxes/${a}/exec`, { cmd: ['sh', '-c', 'httpd -p 3001 -h /home/sandbox/workspace/app'] }, ALICE);
    const r = await d.gateway(host(a, 3001), '/index.html');
    expect(r.status).toBe(200);
    // Control for the test above: on a public port an app's own Authorization header does reach the app.
    const own = await d.gateway(host(a, 3001), '/cgi-bin/env', { headers: { authorization: 'Bearer app-own-token' } });
    expect(own.body).toContain('auth=Bearer app-own-token');
  });

  it('opens with any valid one of several preview cookies, a junk one first included', async () => {
    const { token } = await mint(a);
    const r = await d.gateway(host(a), '/index.html', { headers: { cookie: `sandboxed_preview=junk; app=1; sandboxed_preview="x.y"; sandboxed_preview=${token}` } });
    expect(r.status).toBe(200);
    expect((await d.gateway(host(a), '/index.html', { headers: { cookie: 'sandboxed_preview=junk; sandboxed_preview=x.y' } })).status).toBe(401);
  });

  it('opens with a valid preview cookie behind 40 junk ones of the same name (a sandbox app can set those)', async () => {
    const { token } = await mint(a);
    const junk = Array.from({ length: 40 }, (_, i) => `sandboxed_preview=${i % 2 ? 'junk' : `${token.slice(0, -3)}x${i}`}`).join('; ');
    expect((await d.gateway(host(a), '/index.html', { headers: { cookie: `${junk}; sandboxed_preview=${token}` } })).status).toBe(200);
    expect((await d.gateway(host(a), '/index.html', { headers: { cookie: junk } })).status).toBe(401);
  });

  it('refuses a token with anything after its two parts, and never puts more than a verified token into the cookie', async () => {
    const { token } = await mint(a);
    for (const extra of ['.x', '.x;%20Domain=preview.localhost', ';%20Domain=preview.localhost', '%0d%0aSet-Cookie:%20a=b', '%20', '.']) {
      const r = await d.gateway(host(a), `/?token=${token}${extra}`);
      expect(r.status, extra).toBe(401);
      expect(r.headers['set-cookie'], extra).toBeUndefined();
    }
    const ok = await d.gateway(host(a), `/?token=${token}`);
    expect((ok.headers['set-cookie'] as string[])[0]!.split(';')[0]).toBe(`sandboxed_preview=${token}`);
    expect(d.output).not.toMatch(/unexpected error|ERR_INVALID_CHAR/i);
  });

  it('answers unparseable targets with 400 (no crash), accepts a same-host absolute-form, and never redirects off the preview', async () => {
    const raw = (target: string) => new Promise<string>((resolve) => {
      const sock = connect({ host: '127.0.0.1', port: d.gatewayPort });
      let got = '';
      sock.on('data', (c) => (got += c));
      sock.on('close', () => resolve(got));
      sock.on('error', () => resolve(got));
      sock.write(`GET ${target} HTTP/1.1\r\nHost: ${host(a)}\r\nConnection: close\r\n\r\n`);
    });
    for (const t of ['http://[', 'http://[::1', 'http://other.example/', 'index.html']) expect(await raw(t), t).toMatch(/^HTTP\/1\.1 400 /);
    const { token } = await mint(a);
    expect(await raw(`http://${host(a)}/index.html?token=${token}`)).toMatch(/^HTTP\/1\.1 302 [^]*\r\nlocation: \/index\.html\r\n/i);
    expect(await raw(`//evil.example/x?token=${token}`)).toMatch(/\r\nlocation: \/evil\.example\/x\r\n/i);
    expect((await d.gateway(host(a), '/index.html', { headers: ALICE })).status).toBe(200);
    expect(d.output).not.toMatch(/unhandled|uncaught|unexpected error/i);
  });
});
