import { describe, expect, it } from 'vitest';
import { checkLocalRequest, checkUpgrade, isLoopbackName, parseAuthority } from '../../src/api/browser-guard.ts';

const OFF = { authDisabled: true, apiPort: 9090 };
const ON = { authDisabled: false, apiPort: 9090 };
/** Node's flat rawHeaders from name/value pairs. */
const h = (...pairs: [string, string][]) => pairs.flat();
const code = (err: { code: string } | undefined) => err?.code;

describe('the browser guard (pure)', () => {
  it('parses Host values strictly and canonicalises IPv6', () => {
    expect(parseAuthority('127.0.0.1:9090')).toEqual({ name: '127.0.0.1', port: 9090 });
    expect(parseAuthority('LocalHost')).toEqual({ name: 'localhost', port: undefined });
    expect(parseAuthority('[0:0:0:0:0:0:0:1]:9090')).toEqual({ name: '[::1]', port: 9090 });
    for (const bad of ['a@127.0.0.1:9090', '127.0.0.1:99999', '127.0.0.1:0', '[::1', '[zz]:1', 'a b', '', '127.0.0.1:9090, evil']) expect(parseAuthority(bad), bad).toBeUndefined();
  });

  it('counts only localhost, 127.0.0.0/8 dotted quads and [::1] as loopback', () => {
    for (const name of ['localhost', '127.0.0.1', '127.255.0.9', '[::1]']) expect(isLoopbackName(name), name).toBe(true);
    for (const name of ['localhost.', 'a.localhost', '127.0.0.256', '127.1', '0x7f.0.0.1', '[::ffff:7f00:1]', '0.0.0.0', '10.0.0.1']) expect(isLoopbackName(name), name).toBe(false);
  });

  it('with auth off, accepts a loopback Host with the API port and no Origin, or the API\'s own origin', () => {
    expect(checkLocalRequest(h(['Host', '127.0.0.1:9090']), '/v1/sandboxes', OFF)).toBeUndefined();
    expect(checkLocalRequest(h(['Host', '[::1]:9090'], ['Origin', 'http://localhost:9090']), '/x', OFF)).toBeUndefined();
    expect(checkLocalRequest(h(['Host', 'localhost']), '/x', { authDisabled: true, apiPort: 80 })).toBeUndefined();
    expect(checkLocalRequest(h(['Host', '127.0.0.1:9090'], ['Sec-Fetch-Site', 'none']), '/x', OFF)).toBeUndefined();
  });

  it('with auth off, refuses proxies, foreign or missing Hosts, foreign Origins and cross-site labels, in that order', () => {
    expect(code(checkLocalRequest(h(['Host', 'evil.example'], ['X-Forwarded-For', '1.2.3.4']), '/', OFF))).toBe('forbidden_forwarded');
    expect(code(checkLocalRequest(h(['Host', '127.0.0.1:9090'], ['X-Forwarded-Prefix', '/a']), '/', OFF))).toBe('forbidden_forwarded');
    expect(code(checkLocalRequest([], '/', OFF))).toBe('misdirected_host');
    expect(code(checkLocalRequest(h(['Host', '127.0.0.1:9090'], ['Host', 'evil.example']), '/', OFF))).toBe('misdirected_host');
    expect(code(checkLocalRequest(h(['Host', '127.0.0.1']), '/', OFF))).toBe('misdirected_host');
    expect(code(checkLocalRequest(h(['Host', '127.0.0.1:9090']), 'http://evil.example/v1', OFF))).toBe('misdirected_host');
    expect(code(checkLocalRequest(h(['Host', '127.0.0.1:9090'], ['Origin', 'http://evil.example']), '/', OFF))).toBe('forbidden_origin');
    expect(code(checkLocalRequest(h(['Host', '127.0.0.1:9090'], ['Origin', 'http://127.0.0.1:9090'], ['Origin', 'http://evil.example']), '/', OFF))).toBe('forbidden_origin');
    expect(code(checkLocalRequest(h(['Host', '127.0.0.1:9090'], ['Origin', 'http://127.0.0.1:9090/']), '/', OFF))).toBe('forbidden_origin');
    expect(code(checkLocalRequest(h(['Host', '127.0.0.1:9090'], ['Sec-Fetch-Site', 'same-site']), '/', OFF))).toBe('forbidden_origin');
  });

  it('with auth on, leaves upgrades without Origin alone and accepts only the origin the upgrade was sent to', () => {
    expect(checkUpgrade(h(['Host', 'api.example.com'], ['X-Forwarded-For', '1.2.3.4']), '/ws', ON)).toBeUndefined();
    expect(checkUpgrade(h(['Host', 'api.example.com'], ['Origin', 'https://api.example.com']), '/ws', ON)).toBeUndefined();
    expect(checkUpgrade(h(['Host', 'api.example.com:8443'], ['Origin', 'https://API.example.com:8443']), '/ws', ON)).toBeUndefined();
    expect(code(checkUpgrade(h(['Host', 'api.example.com'], ['Origin', 'https://evil.example']), '/ws', ON))).toBe('forbidden_origin');
    expect(code(checkUpgrade(h(['Host', 'api.example.com'], ['Origin', 'https://api.example.com:8443']), '/ws', ON))).toBe('forbidden_origin');
    expect(code(checkUpgrade(h(['Origin', 'https://api.example.com']), '/ws', ON))).toBe('forbidden_origin');
    expect(code(checkUpgrade(h(['Host', '127.0.0.1:9090'], ['Origin', 'null']), '/ws', ON))).toBe('forbidden_origin');
  });
});
