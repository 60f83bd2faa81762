import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../../src/ids.ts';
import { startDaemon, type ApiResponse, type Daemon } from '../support/daemon.ts';

const ALICE = { authorization: 'Bearer alice-secret-tenants-1' };
const BOB = { authorization: 'Bearer bob-secret-tenants-22' };
const ROOT_TOKEN = { authorization: 'Bearer root-secret-tenants-333' };

/** An error answer with what legitimately differs between two refs (the ref echoed, the request id) blanked. */
function shape(r: ApiResponse, ref: string): unknown {
  const { request_id: _ignored, ...error } = r.body.error;
  return { status: r.status, error: JSON.parse(JSON.stringify(error).split(ref).join('<ref>')) };
}

describe('tenants are invisible to each other', () => {
  let d: Daemon;
  let alicesApp: string;
  let bobsApp: string;
  let alicesOnly: string;

  beforeAll(async () => {
    d = await startDaemon({ env: { SANDBOXD_API_AUTH_DISABLED: 'false', SANDBOXD_API_TOKENS: 'alice:alice-secret-tenants-1,bob:bob-secret-tenants-22,root:root-secret-tenants-333:admin' } });
    const a = await d.api('POST', '/v1/sandboxes', { name: 'app-1' }, ALICE);
    const b = await d.api('POST', '/v1/sandboxes', { name: 'app-1' }, BOB);
    const only = await d.api('POST', '/v1/sandboxes', { name: 'alice-only' }, ALICE);
    expect([a.status, b.status, only.status], `${a.text} ${b.text} ${only.text}`).toEqual([201, 201, 201]);
    [alicesApp, bobsApp, alicesOnly] = [a.body.id, b.body.id, only.body.id];
  });
  afterAll(() => d?.cleanup());

  it('lets two tenants each own a sandbox named app-1, and refuses a second app-1 to the same tenant', async () => {
    expect(alicesApp).not.toBe(bobsApp);
    const again = await d.api('POST', '/v1/sandboxes', { name: 'app-1' }, ALICE);
    expect(again.status).toBe(409);
    expect(again.body.error).toMatchObject({ code: 'conflict', details: { field: 'name' } });
    expect(again.body.error.message).toMatch(/the name 'app-1' is already used by another of your sandboxes/);
  });

  it("resolves a name within the caller's own sandboxes only", async () => {
    expect((await d.api('GET', '/v1/sandboxes/app-1', undefined, ALICE)).body).toMatchObject({ id: alicesApp, owner: 'alice' });
    expect((await d.api('GET', '/v1/sandboxes/app-1', undefined, BOB)).body).toMatchObject({ id: bobsApp, owner: 'bob' });
    expect((await d.api('GET', '/sandbox/APP-1', undefined, BOB)).body.id).toBe(bobsApp);
    // Bob's own owner/name form is his sandbox; an exec by name reaches his container, not Alice's.
    expect((await d.api('GET', '/v1/sandboxes/bob%2Fapp-1', undefined, BOB)).body.id).toBe(bobsApp);
    const exec = await d.api('POST', '/v1/sandboxes/app-1/exec', { cmd: ['hostname'] }, BOB);
    expect(exec.status, exec.text).toBe(200);
  });

  it('answers a foreign id or name exactly as a nonexistent one, on every route form, leaking no status or owner', async () => {
    const pairs: [string, string][] = [
      [alicesOnly, newId()], // a foreign id / an id nobody has
      ['alice-only', 'nobody-has-this'], // a foreign name / a name nobody has
      ['alice%2Falice-only', 'alice%2Fnobody-has-this'], // owner/name of another tenant
    ];
    for (const [foreign, missing] of pairs) {
      for (const [method, suffix, body] of [
        ['GET', '', undefined], ['POST', '/stop', undefined], ['POST', '/start', undefined], ['POST', '/keepalive', undefined],
        ['DELETE', '', undefined], ['DELETE', '?purge=true', undefined], ['POST', '/exec', { cmd: ['true'] }], ['GET', '/files', undefined],
      ] as const) {
        const f = await d.api(method, `/v1/sandboxes/${foreign}${suffix}`, body, BOB);
        const m = await d.api(method, `/v1/sandboxes/${missing}${suffix}`, body, BOB);
        expect(f.status, `${method} ${foreign}${suffix}: ${f.text}`).toBe(404);
        expect(shape(f, decodeURIComponent(foreign)), `${method} ${suffix}`).toEqual(shape(m, decodeURIComponent(missing)));
        expect(f.text).not.toMatch(/running|stopped|alice'?s|owner/);
      }
    }
    // Nothing Bob did touched Alice's sandbox.
    expect((await d.api('GET', `/v1/sandboxes/${alicesOnly}`, undefined, ALICE)).body).toMatchObject({ status: 'running', owner: 'alice' });
  });

  it("answers a create with another tenant's id as 'not available', naming no status, owner or name, and changes nothing", async () => {
    const foreign = await d.api('POST', '/v1/sandboxes', { id: alicesOnly, name: 'squat' }, BOB);
    expect(foreign.status).toBe(409);
    expect(foreign.body.error).toMatchObject({ code: 'conflict', details: { field: 'id' } });
    expect(foreign.body.error.message).toBe(`id ${alicesOnly} is not available; omit id to get a fresh one, or choose another ULID`);
    expect(foreign.text).not.toMatch(/running|status|alice|app-1/);
    // The same id in lower case is the same id: the same answer.
    expect((await d.api('POST', '/v1/sandboxes', { id: alicesOnly.toLowerCase() }, BOB)).body.error.message).toBe(foreign.body.error.message);
    // Its owner may see its own sandbox's status in the conflict.
    const own = await d.api('POST', '/v1/sandboxes', { id: alicesOnly }, ALICE);
    expect(own.status).toBe(409);
    expect(own.body.error.message).toMatch(/you already have sandbox .* \(status running\)/);
    expect((await d.api('GET', '/v1/sandboxes/squat', undefined, BOB)).status).toBe(404);
    expect((await d.api('GET', `/v1/sandboxes/${alicesOnly}`, undefined, ALICE)).body).toMatchObject({ owner: 'alice', name: 'alice-only', status: 'running' });
  });

  it('lets an admin address every tenant by id and by owner/name (%2F), and never resolves its bare name to another tenant', async () => {
    for (const [ref, id] of [[alicesApp, alicesApp], [bobsApp, bobsApp], ['alice%2Fapp-1', alicesApp], ['bob%2Fapp-1', bobsApp], ['alice%2Falice-only', alicesOnly]]) {
      const r = await d.api('GET', `/v1/sandboxes/${ref}`, undefined, ROOT_TOKEN);
      expect(r.body.id, `${ref}: ${r.text}`).toBe(id);
    }
    // A bare name is the admin's own: a tenant's sandbox of that name (a squat) never catches its requests.
    for (const name of ['app-1', 'alice-only']) expect((await d.api('GET', `/v1/sandboxes/${name}`, undefined, ROOT_TOKEN)).status).toBe(404);
    expect((await d.api('POST', '/v1/sandboxes/bob%2Fapp-1/stop', undefined, ROOT_TOKEN)).body).toMatchObject({ id: bobsApp, status: 'stopped' });
    expect((await d.api('GET', '/v1/sandboxes/app-1', undefined, ALICE)).body.status).toBe('running');
    const bad = await d.api('GET', '/v1/sandboxes/alice%2F01ARZ3NDEKTSV4RRFFQ69G5FAV', undefined, ROOT_TOKEN);
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/owner\/name/);
  });

  it("keeps /metrics, which names every tenant's sandboxes, to admin tokens", async () => {
    const r = await d.api('GET', '/metrics', undefined, ALICE);
    expect(r.status).toBe(403);
    expect(r.body.error.code).toBe('admin_only');
    expect(r.text).not.toContain(bobsApp);
    expect((await d.api('GET', '/metrics', undefined, ROOT_TOKEN)).text).toContain(bobsApp);
  });
});
