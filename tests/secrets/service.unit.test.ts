import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SecretBox } from '../../src/secrets/box.ts';
import { MAX_SECRETS, Secrets } from '../../src/secrets/service.ts';
import { openStore } from '../../src/store/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'sandboxed-secrets-'));
const store = openStore(dir, 1000);
const secrets = new Secrets(store, SecretBox.load(dir));
afterAll(() => (store.db.close(), rmSync(dir, { recursive: true, force: true })));
const alice = { name: 'alice', admin: false };
const bob = { name: 'bob', admin: false };
const root = { name: 'root', admin: true };

describe('secrets', () => {
  it("are the tenant's own: listed by name only, never another tenant's, and readable in the clear only by the daemon", () => {
    const view = secrets.put(alice, 'ANTHROPIC_API_KEY', 'sk-alice-1', 'tenant', 'r1');
    expect(view).toMatchObject({ name: 'ANTHROPIC_API_KEY', scope: 'tenant' });
    expect(JSON.stringify(view)).not.toContain('sk-alice-1');
    expect(secrets.list(alice).map((s) => s.name)).toEqual(['ANTHROPIC_API_KEY']);
    expect(secrets.list(bob)).toEqual([]);
    expect(secrets.valueFor('alice', 'ANTHROPIC_API_KEY')).toBe('sk-alice-1');
    expect(secrets.valueFor('bob', 'ANTHROPIC_API_KEY')).toBeUndefined();
  });

  it('replace a value in place (the creation time stays) and delete; deleting one that is not there is not_found', () => {
    const first = secrets.put(bob, 'TOKEN', 'one', 'tenant', 'r2');
    const second = secrets.put(bob, 'TOKEN', 'two', 'tenant', 'r3');
    expect(second.created_at).toBe(first.created_at);
    expect(secrets.valueFor('bob', 'TOKEN')).toBe('two');
    secrets.delete(bob, 'TOKEN', 'tenant', 'r4');
    expect(secrets.valueFor('bob', 'TOKEN')).toBeUndefined();
    expect(() => secrets.delete(bob, 'TOKEN', 'tenant', 'r5')).toThrow(expect.objectContaining({ code: 'not_found' }));
  });

  it('global ones are set by admins only, listed for everyone, and used when a tenant has none of its own', () => {
    expect(() => secrets.put(alice, 'OPENAI_API_KEY', 'sk-x', 'global', 'r6')).toThrow(expect.objectContaining({ code: 'admin_only' }));
    secrets.put(root, 'OPENAI_API_KEY', 'sk-platform', 'global', 'r7');
    expect(secrets.list(bob)).toEqual([expect.objectContaining({ name: 'OPENAI_API_KEY', scope: 'global' })]);
    expect(secrets.valueFor('bob', 'OPENAI_API_KEY')).toBe('sk-platform');
    secrets.put(bob, 'OPENAI_API_KEY', 'sk-bob-own', 'tenant', 'r8');
    expect(secrets.valueFor('bob', 'OPENAI_API_KEY')).toBe('sk-bob-own');
    expect(() => secrets.delete(bob, 'OPENAI_API_KEY', 'global', 'r9')).toThrow(expect.objectContaining({ code: 'admin_only' }));
  });

  it(`are at most ${MAX_SECRETS} per tenant: a new name past it is quota_exceeded, replacing one still works`, () => {
    const carol = { name: 'carol', admin: false };
    for (let i = 0; i < MAX_SECRETS; i++) secrets.put(carol, `K${i}`, 'v', 'tenant', 'q');
    expect(() => secrets.put(carol, 'ONE_MORE', 'v', 'tenant', 'q')).toThrow(expect.objectContaining({ code: 'quota_exceeded', details: { quota: 'secrets', limit: MAX_SECRETS, used: MAX_SECRETS, requested: 1 } }));
    expect(secrets.put(carol, 'K0', 'new', 'tenant', 'q').name).toBe('K0');
    expect(secrets.valueFor('carol', 'K0')).toBe('new');
    // Another tenant is not limited by carol's.
    expect(secrets.put({ name: 'dave', admin: false }, 'K0', 'v', 'tenant', 'q').name).toBe('K0');
  });

  it('are nowhere in the data directory in the clear, nor in the audit log', () => {
    store.db.exec('PRAGMA wal_checkpoint(TRUNCATE)');
    for (const f of readdirSync(dir)) {
      const bytes = readFileSync(join(dir, f));
      for (const value of ['sk-alice-1', 'sk-platform', 'sk-bob-own']) expect(bytes.includes(Buffer.from(value)), `${value} in ${f}`).toBe(false);
    }
    const audit = store.db.all<{ action: string; detail: string }>("SELECT action, detail FROM audit_log WHERE action LIKE 'secret.%'");
    expect(audit.length).toBeGreaterThan(0);
    expect(JSON.stringify(audit)).not.toMatch(/sk-/);
  });
});
