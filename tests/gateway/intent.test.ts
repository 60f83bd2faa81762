import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { docker, eventually, startDaemon, TEST_IMAGE, type Daemon } from '../support/daemon.ts';

const ALICE = { authorization: 'Bearer alice-secret-intent-1' };
/** A tag of the test image that this file removes, so that starting a sandbox made from it really fails. */
const DOOMED_TAG = `intent-${process.pid}`;
const DOOMED = `sandboxed/test:${DOOMED_TAG}`;

/** One upgrade request over a raw socket: answers the status line and the body the gateway sent. */
function upgrade(port: number, host: string, path = '/', headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const sock = connect({ host: '127.0.0.1', port });
    let got = '';
    sock.setTimeout(30_000, () => sock.destroy());
    sock.on('data', (c) => (got += c));
    const done = () => {
      const m = /^HTTP\/1\.1 (\d{3})/.exec(got);
      resolve({ status: m ? Number(m[1]) : 0, body: got.slice(got.indexOf('\r\n\r\n') + 4) });
    };
    sock.on('close', done);
    sock.on('error', () => undefined);
    const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    sock.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${extra}\r\n`);
  });
}

describe('lifecycle keeps intent at the preview gateway', () => {
  let d: Daemon;
  const host = (id: string, port = 3000) => `s-${id.toLowerCase()}-${port}.preview.localhost`;
  const status = async (id: string) => (await d.api('GET', `/v1/sandboxes/${id}`, undefined, ALICE)).body.status as string;
  const containerOf = async (id: string) => (await d.containers()).find((c) => c.Labels['sandboxed.id'] === id);

  /** Every anonymous or preview-credentialed way in, HTTP and WebSocket; each must be refused without a start. */
  async function knock(id: string, token: string): Promise<void> {
    const browser = await d.gateway(host(id), '/index.html', { headers: { accept: 'text/html' } });
    expect(browser.status).toBe(503);
    expect(browser.headers['content-type']).toMatch(/text\/html/);
    expect(browser.body).toMatch(/This app is switched off/);
    const api = await d.gateway(host(id), '/index.html', { method: 'POST', body: 'x' });
    expect(api.status).toBe(503);
    const err = JSON.parse(api.body).error;
    expect(err.code).toBe('sandbox_down');
    expect(err.retryable).toBe(false);
    expect(err.message).toContain(`POST /v1/sandboxes/${id}/start`);
    // The private port, with a preview token (swapped for a cookie first), the cookie, and the owner's API token.
    const swap = await d.gateway(host(id, 3001), `/index.html?token=${token}`);
    expect(swap.status).toBe(302);
    const cookie = (swap.headers['set-cookie'] as string[])[0]!.split(';')[0]!;
    expect(JSON.parse((await d.gateway(host(id, 3001), '/index.html', { headers: { cookie } })).body).error.code).toBe('sandbox_down');
    expect(JSON.parse((await d.gateway(host(id, 3001), '/index.html', { headers: ALICE })).body).error.code).toBe('sandbox_down');
    const ws = await upgrade(d.gatewayPort, host(id));
    expect(ws.status).toBe(503);
    expect(JSON.parse(ws.body).error.code).toBe('sandbox_down');
    const wsPrivate = await upgrade(d.gatewayPort, host(id, 3001), '/', { cookie });
    expect(wsPrivate.status).toBe(503);
  }

  beforeAll(async () => {
    await docker.getImage(TEST_IMAGE).tag({ repo: 'sandboxed/test', tag: DOOMED_TAG });
    d = await startDaemon({ env: { SANDBOXD_API_AUTH_DISABLED: 'false', SANDBOXD_API_TOKENS: 'alice:alice-secret-intent-1', SANDBOXD_ALLOWED_IMAGES: DOOMED, SANDBOXD_WAKE_HOLD_S: '10' } });
  });
  afterAll(async () => {
    await d?.cleanup();
    await docker.getImage(DOOMED).remove().catch(() => undefined);
  });

  const create = async (image?: string) => {
    const r = await d.api('POST', '/v1/sandboxes', { ports: [3000, 3001], port_visibility: { '3001': 'private' }, ...(image ? { image } : {}) }, ALICE);
    expect(r.status, r.text).toBe(201);
    const id = r.body.id as string;
    const token = (await d.api('POST', `/v1/sandboxes/${id}/preview-tokens`, {}, ALICE)).body.token as string;
    return { id, token };
  };

  it('wakes a stopped sandbox on a preview request (the control: sleeping is the one intent a visit undoes)', async () => {
    const { id } = await create();
    expect((await d.api('POST', `/v1/sandboxes/${id}/stop`, undefined, ALICE)).status).toBe(200);
    const r = await d.gateway(host(id), '/index.html');
    expect(r.status).toBe(200);
    expect(await status(id)).toBe('running');
  });

  it('keeps a destroyed sandbox down after HTTP and WebSocket preview requests, with and without a preview token, until an authorized start', async () => {
    const { id, token } = await create();
    expect((await d.api('DELETE', `/v1/sandboxes/${id}`, undefined, ALICE)).body.status).toBe('destroyed');
    await knock(id, token);
    expect(await status(id)).toBe('destroyed');
    expect(await containerOf(id)).toBeUndefined();
    expect(d.output).not.toMatch(/waking for a preview request[^\n]*destroyed/);
    // An anonymous API call cannot start it either; the owner's can.
    expect((await d.api('POST', `/v1/sandboxes/${id}/start`)).status).toBe(401);
    expect((await d.api('POST', `/v1/sandboxes/${id}/start`, undefined, ALICE)).body.status).toBe('running');
    // Started by the API: the app may take a moment to listen (the gateway only waits for ports it woke itself).
    expect(await eventually(async () => (await d.gateway(host(id), '/index.html')).status === 200, 10_000)).toBe(true);
    expect((await containerOf(id))?.State).toBe('running');
  });

  it('keeps a sandbox in error (its image is gone, so a start failed) down after preview requests, until an authorized start succeeds', async () => {
    const { id, token } = await create(DOOMED);
    expect((await d.api('DELETE', `/v1/sandboxes/${id}`, undefined, ALICE)).body.status).toBe('destroyed');
    await docker.getImage(DOOMED).remove();
    const failed = await d.api('POST', `/v1/sandboxes/${id}/start`, undefined, ALICE);
    expect(failed.body.error?.code, failed.text).toBe('sandbox_unavailable');
    expect(await status(id)).toBe('error');
    // The image is back: a wake would now succeed, so staying down is the gateway's choice, not bad luck.
    await docker.getImage(TEST_IMAGE).tag({ repo: 'sandboxed/test', tag: DOOMED_TAG });
    await knock(id, token);
    expect(await status(id)).toBe('error');
    expect(await containerOf(id)).toBeUndefined();
    expect((await d.api('POST', `/v1/sandboxes/${id}/start`, undefined, ALICE)).body.status).toBe('running');
    // Started by the API: the app may take a moment to listen (the gateway only waits for ports it woke itself).
    expect(await eventually(async () => (await d.gateway(host(id), '/index.html')).status === 200, 10_000)).toBe(true);
  });
});
