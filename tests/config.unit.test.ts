import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, isLoopback, loadConfig } from '../src/config.ts';

const dir = mkdtempSync(join(tmpdir(), 'sandboxed-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The problems loadConfig lists for an env, or [] when it accepts it. */
function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
}

/**
 * Every typed setting, read from the source itself so a new variable is covered the day it is added:
 * [reader, name, min, max] for p.int/p.num, [reader, name] for the others.
 */
const SETTINGS = [...readFileSync(resolve(import.meta.dirname, '../src/config.ts'), 'utf8')
  .matchAll(/p\.(int|num|bool|match|oneOf)\('([A-Z0-9_]+)'(?:,\s*[^,]+,\s*([^,]+),\s*([^,)]+)\))?/g)]
  .map((m) => ({ kind: m[1]!, name: m[2]!, min: m[3], max: m[4] }));

/** Bad values for one setting: junk of every kind, and just past each bound of a number. */
function badValues(s: (typeof SETTINGS)[number]): string[] {
  const junk = ['banana', 'NaN', '1e400', '\u0000', '😀', `${'9'.repeat(400)}x`];
  if (s.kind === 'bool') return ['maybe', '2', 'truee', ...junk];
  if (s.kind === 'match') return ['-leading-dash', 'UPPER CASE', 'a/b', 'x'.repeat(64), '\u0000', '😀'];
  if (s.kind === 'oneOf') return ['loud', 'INFO ', '😀'];
  // Bounds are literals or small expressions of literals (1 << 20, 2 ** 31 - 1, 8 << 20).
  const num = (expr: string | undefined) => (expr && /^[\d_ <*+\-]+$/.test(expr) ? Number(Function(`return (${expr.replace(/_/g, '')})`)()) : undefined);
  const [min, max] = [num(s.min), num(s.max)];
  const bounds = [min !== undefined ? String(min - 1) : undefined, max !== undefined ? String(max + 1) : undefined].filter((v): v is string => v !== undefined);
  return [...bounds, ...(s.kind === 'int' ? ['1.5'] : []), ...junk];
}

describe('configuration', () => {
  it('starts from working defaults with an empty environment: loopback API without auth, documented limits', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      previewDomain: 'localhost', httpPort: 80, api: { host: '127.0.0.1', port: 9090 }, authDisabled: true, tokens: [], dataDir: '/var/lib/sandboxed',
      instance: 'default', idleTimeoutS: 1800, previewSecret: undefined, logLevel: 'info', sandboxUid: 61000, sandboxGid: 61000,
      pressure: { softPct: 15, hardPct: 10, emergencyPct: 5, resumePct: 12 },
      tenantQuotas: { sandboxes: null, running: null, memoryMb: null, diskMb: null, alwaysOn: 0 },
    });
    expect(c.defaults.memoryMb).toBeLessThanOrEqual(c.maxima.memoryMb);
    expect(c.workerThreads).toBeGreaterThanOrEqual(4);
  });

  it('treats empty and blank variables as unset, and trims values', () => {
    expect(loadConfig({ HTTP_PORT: '', SANDBOXD_IDLE_TIMEOUT_S: '   ', SANDBOXD_LOG_LEVEL: '' })).toMatchObject({ httpPort: 80, idleTimeoutS: 1800, logLevel: 'info' });
    expect(loadConfig({ HTTP_PORT: ' 8080 ', SANDBOXD_API_AUTH_DISABLED: ' TRUE ' })).toMatchObject({ httpPort: 8080, authDisabled: true });
  });

  it(`finds the typed settings in the source (${SETTINGS.length} of them)`, () => {
    expect(SETTINGS.length).toBeGreaterThan(60);
    expect(SETTINGS.map((s) => s.name)).toEqual(expect.arrayContaining(['HTTP_PORT', 'SANDBOXD_IDLE_TIMEOUT_S', 'SANDBOXD_LOG_LEVEL', 'SANDBOXD_INSTANCE', 'PREVIEW_TLS']));
  });

  it('refuses every bad value of every typed setting with a problem that names the variable and quotes the value', () => {
    const missed: string[] = [];
    for (const s of SETTINGS) {
      for (const bad of badValues(s)) {
        const found = problems({ [s.name]: bad }).find((p) => p.startsWith(`${s.name}: `));
        // Booleans are quoted as they were compared, lowercased.
        if (!found || !found.toLowerCase().includes(`'${bad.trim().toLowerCase()}'`)) missed.push(`${s.name}=${JSON.stringify(bad)} → ${JSON.stringify(problems({ [s.name]: bad }))}`);
      }
    }
    expect(missed).toEqual([]);
  });

  it('accepts each bound of a number exactly', () => {
    const c = loadConfig({ HTTP_PORT: '65535', SANDBOXD_IDLE_TIMEOUT_S: '10', SANDBOXD_PRESSURE_SOFT_PCT: '100', SANDBOXD_STOP_GRACE_S: '0' });
    expect(c).toMatchObject({ httpPort: 65535, idleTimeoutS: 10, stopGraceS: 0, pressure: { softPct: 100 } });
  });

  it('lists every problem at once, one line each, in the error message', () => {
    let err: unknown;
    try {
      loadConfig({ HTTP_PORT: '0', SANDBOXD_LOG_LEVEL: 'loud', PREVIEW_TLS: 'maybe' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems.map((p) => p.split(':')[0])).toEqual(['HTTP_PORT', 'PREVIEW_TLS', 'SANDBOXD_LOG_LEVEL']);
    expect((err as Error).message).toBe(`invalid configuration:\n  ${(err as ConfigError).problems.join('\n  ')}`);
  });

  it('parses the API bind (IPv4, [IPv6], names) and refuses malformed ones by name', () => {
    expect(loadConfig({ SANDBOXED_API_BIND: '[::1]:9191' }).api).toEqual({ host: '::1', port: 9191 });
    expect(loadConfig({ SANDBOXED_API_BIND: 'localhost:1' }).api).toEqual({ host: 'localhost', port: 1 });
    for (const bad of ['127.0.0.1', '127.0.0.1:0', '127.0.0.1:65536', ':9090', '[::1:9090', 'a b:90', '127.0.0.1:90:90']) {
      expect(problems({ SANDBOXED_API_BIND: bad }).some((p) => p.startsWith('SANDBOXED_API_BIND: expected host:port')), bad).toBe(true);
    }
  });

  it('refuses auth off on a non-loopback bind or with the TLS profile, and auth on without tokens', () => {
    expect(problems({ SANDBOXED_API_BIND: '0.0.0.0:9090' })).toEqual([expect.stringMatching(/^SANDBOXD_API_AUTH_DISABLED: auth may be off only while the API binds loopback/)]);
    expect(problems({ PREVIEW_TLS: 'true' })).toEqual([expect.stringMatching(/^SANDBOXD_API_AUTH_DISABLED: PREVIEW_TLS=true select the TLS profile/)]);
    expect(problems({ PREVIEW_ENTRYPOINT: 'websecure' })).toEqual([expect.stringMatching(/PREVIEW_ENTRYPOINT=websecure select the TLS profile/)]);
    expect(problems({ SANDBOXD_API_AUTH_DISABLED: 'false' })).toEqual([expect.stringMatching(/^SANDBOXD_API_TOKENS: auth is enabled/)]);
    const c = loadConfig({ SANDBOXD_API_AUTH_DISABLED: 'false', SANDBOXED_API_BIND: '0.0.0.0:9090', SANDBOXD_API_TOKENS: 'alice:alice-secret-1,ops:ops-secret-12:admin:sandboxes=5' });
    expect(c.tokens).toEqual([{ name: 'alice', secret: 'alice-secret-1', admin: false }, { name: 'ops', secret: 'ops-secret-12', admin: true, quotas: { sandboxes: 5 } }]);
  });

  it('names the token entry that is wrong: short or reused secrets, bad names, unknown flags, conflicting quotas', () => {
    const on = { SANDBOXD_API_AUTH_DISABLED: 'false' };
    expect(problems({ ...on, SANDBOXD_API_TOKENS: 'a:short' })).toContain("SANDBOXD_API_TOKENS: entry 1 ('a'): the secret must be at least 8 characters");
    expect(problems({ ...on, SANDBOXD_API_TOKENS: 'a:long-secret-1,b:long-secret-1' })).toContain("SANDBOXD_API_TOKENS: entry 2 ('b'): the secret is already used by another token");
    expect(problems({ ...on, SANDBOXD_API_TOKENS: 'bad name:long-secret-1' })).toContain('SANDBOXD_API_TOKENS: entry 1: the name must be 1-64 letters, digits, . _ -');
    expect(problems({ ...on, SANDBOXD_API_TOKENS: 'a:long-secret-1:root' })[0]).toMatch(/^SANDBOXD_API_TOKENS: entry 1: expected name:secret.*got 'root'$/);
    expect(problems({ ...on, SANDBOXD_API_TOKENS: 'a:long-secret-1:running=-1' })[0]).toMatch(/got 'running=-1'$/);
    expect(problems({ ...on, SANDBOXD_API_TOKENS: 'a:long-secret-1:running=1,a:long-secret-2:running=2' })[0]).toMatch(/^SANDBOXD_API_TOKENS: entry 2 \('a'\): another token of tenant 'a' sets different quotas/);
    // name=secret is the compose file's form.
    expect(loadConfig({ ...on, SANDBOXD_API_TOKENS: 'a=long:secret=1' }).tokens).toEqual([{ name: 'a', secret: 'long:secret=1', admin: false }]);
  });

  it('reads tokens from a JSON file and names the file, or the entry, when it is wrong', () => {
    const file = join(dir, 'tokens.json');
    const on = { SANDBOXD_API_AUTH_DISABLED: 'false', SANDBOXD_API_TOKENS_FILE: file };
    writeFileSync(file, JSON.stringify([{ name: 'f', secret: 'file-secret-1', quotas: { memory_mb: 4096, disk_mb: null } }]));
    expect(loadConfig(on).tokens).toEqual([{ name: 'f', secret: 'file-secret-1', admin: false, quotas: { memoryMb: 4096, diskMb: null } }]);
    writeFileSync(file, '{not json');
    expect(problems(on)[0]).toMatch(new RegExp(`^SANDBOXD_API_TOKENS_FILE: cannot read '${file}' as JSON`));
    writeFileSync(file, '{"name": "f"}');
    expect(problems(on)[0]).toBe('SANDBOXD_API_TOKENS_FILE: expected a JSON array of {name, secret, admin?, quotas?}');
    writeFileSync(file, '[{"name": "f", "secret": 5}, {"name": "g", "secret": "file-secret-2", "quotas": {"cpus": 1}}]');
    expect(problems(on).slice(0, 2)).toEqual([
      expect.stringMatching(/^SANDBOXD_API_TOKENS_FILE: entry 1: expected \{"name": string/), expect.stringMatching(/^SANDBOXD_API_TOKENS_FILE: entry 2: quotas\.cpus: expected one of/),
    ]);
    expect(problems({ ...on, SANDBOXD_API_TOKENS_FILE: join(dir, 'missing.json') })[0]).toMatch(/^SANDBOXD_API_TOKENS_FILE: cannot read/);
  });

  it('checks settings against each other, naming both', () => {
    expect(problems({ SANDBOXD_GATEWAY_HEADERS_TIMEOUT_S: '60', SANDBOXD_GATEWAY_REQUEST_TIMEOUT_S: '30' })).toEqual([
      'SANDBOXD_GATEWAY_HEADERS_TIMEOUT_S: 60 is above SANDBOXD_GATEWAY_REQUEST_TIMEOUT_S (30); the headers are part of the request',
    ]);
    expect(problems({ SANDBOXD_PRESSURE_HARD_PCT: '20' })).toEqual([expect.stringMatching(/^SANDBOXD_PRESSURE_\*: need EMERGENCY \(5\) <= HARD \(20\) <= RESUME \(12\), and HARD <= SOFT \(15\)$/)]);
    expect(problems({ SANDBOXD_DEFAULT_MEMORY_MB: '4096', SANDBOXD_MAX_MEMORY_MB: '1024' })).toEqual(['SANDBOXD_DEFAULT_MEMORY_MB: 4096 is above SANDBOXD_MAX_MEMORY_MB (1024)']);
    expect(problems({ SANDBOXD_PREVIEW_SECRET: 'too-short' })).toEqual([expect.stringMatching(/^SANDBOXD_PREVIEW_SECRET: must be at least 32 characters/)]);
  });

  it('refuses a relative data dir, a non-DNS preview domain and bad tenant quotas by name', () => {
    expect(problems({ SANDBOXED_DATA_DIR: 'data' })).toEqual(["SANDBOXED_DATA_DIR: must be an absolute path (got 'data')"]);
    expect(loadConfig({ SANDBOXED_DATA_DIR: '/srv/x/../data' }).dataDir).toBe('/srv/data');
    for (const bad of ['-x.com', 'a..b', 'exa mple.com', 'ex_ample.com', 'é.com', 'a.com.']) {
      expect(problems({ PREVIEW_DOMAIN: bad }), bad).toEqual([expect.stringMatching(/^PREVIEW_DOMAIN: must be a DNS name/)]);
    }
    expect(loadConfig({ PREVIEW_DOMAIN: 'Example.COM' }).previewDomain).toBe('example.com');
    expect(loadConfig({ SANDBOXD_TENANT_MAX_RUNNING: '3', SANDBOXD_TENANT_MAX_ALWAYS_ON: 'unlimited' }).tenantQuotas).toMatchObject({ running: 3, alwaysOn: null });
    for (const bad of ['-1', '1.5', 'lots', String(2 ** 31)]) {
      expect(problems({ SANDBOXD_TENANT_MAX_SANDBOXES: bad }), bad).toEqual([`SANDBOXD_TENANT_MAX_SANDBOXES: must be a whole number from 0 to ${2 ** 30}, or unlimited (got '${bad}')`]);
    }
  });

  it('counts only localhost, ::1 and 127.0.0.0/8 dotted quads as loopback', () => {
    for (const h of ['localhost', '::1', '127.0.0.1', '127.9.9.9']) expect(isLoopback(h), h).toBe(true);
    for (const h of ['0.0.0.0', '::', '127.1', 'localhost.', '10.0.0.1', '::ffff:127.0.0.1', '']) expect(isLoopback(h), h).toBe(false);
  });
});
