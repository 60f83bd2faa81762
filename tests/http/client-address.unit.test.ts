import { describe, expect, it } from 'vitest';
import { clientKey, isLocal } from '../../src/http/client-address.ts';

describe('the client-address key of per-address limits', () => {
  it('keys IPv4 as is, also when IPv4-mapped, in any case', () => {
    expect(clientKey('203.0.113.7')).toBe('203.0.113.7');
    expect(clientKey('::ffff:203.0.113.7')).toBe('203.0.113.7');
    expect(clientKey('::FFFF:203.0.113.7')).toBe('203.0.113.7');
  });

  it('keys IPv6 by its /64 whatever the spelling, so a host cannot dodge a limit by changing its low bits', () => {
    const key = '2001:db8:0:1::/64';
    for (const a of ['2001:db8:0:1::1', '2001:db8:0:1:ffff:ffff:ffff:ffff', '2001:0DB8:0000:0001:0:0:0:2', '2001:db8:0:1::1%eth0', '2001:db8::1:0:0:0:3']) {
      expect(clientKey(a), a).toBe(key);
    }
    expect(clientKey('2001:db8:0:2::1')).not.toBe(key);
    expect(clientKey('::1')).toBe('0:0:0:0::/64');
    expect(clientKey('fe80::1%lo')).toBe('fe80:0:0:0::/64');
  });

  it('answers a key, never throwing, for a missing or odd address', () => {
    expect(clientKey(undefined)).toBe('unknown');
    expect(clientKey('')).toBe('unknown');
    for (const odd of ['not-an-ip', '😀', '1.2.3.4.5', ':::', 'x'.repeat(10_000)]) expect(typeof clientKey(odd), odd).toBe('string');
  });

  it('counts loopback addresses as this host, and nothing else', () => {
    for (const a of ['127.0.0.1', '127.8.9.10', '::1', '::ffff:127.0.0.1']) expect(isLocal(a), a).toBe(true);
    for (const a of ['10.0.0.1', '::', '::2', '0.0.0.0', '::ffff:10.0.0.1', '128.0.0.1']) expect(isLocal(a), a).toBe(false);
  });
});
