import { describe, expect, it } from 'vitest';
import { parsePreviewHost } from '../../src/gateway/hosts.ts';

const ID = '01JABCDEFGHJKMNPQRSTVWXYZ0';

describe('preview Host parsing', () => {
  it('finds the sandbox and port in any letter case, with or without a port or a trailing dot', () => {
    for (const host of [`s-${ID.toLowerCase()}-3000.preview.example.com`, `S-${ID}-3000.PREVIEW.Example.COM:8080`, `s-${ID.toLowerCase()}-3000.preview.example.com.`]) {
      expect(parsePreviewHost(host, 'example.com'), host).toEqual({ sandboxId: ID, port: 3000 });
    }
    expect(parsePreviewHost(`s-${ID}-1.preview.localhost`, 'localhost')).toEqual({ sandboxId: ID, port: 1 });
    expect(parsePreviewHost(`s-${ID}-65535.preview.localhost`, 'localhost')).toEqual({ sandboxId: ID, port: 65535 });
  });

  it.each([
    ['no Host', undefined],
    ['an empty Host', ''],
    ['another domain', `s-${ID}-3000.preview.example.org`],
    ['a domain that only ends the same', `s-${ID}-3000.preview.notexample.com`],
    ['the preview domain followed by another', `s-${ID}-3000.preview.example.com.evil.org`],
    ['the API host', 'api.example.com'],
    ['the bare preview domain', 'preview.example.com'],
    ['a subdomain above the sandbox label', `x.s-${ID}-3000.preview.example.com`],
    ['port 0', `s-${ID}-0.preview.example.com`],
    ['port 65536', `s-${ID}-65536.preview.example.com`],
    ['a six-digit port', `s-${ID}-300000.preview.example.com`],
    ['no port', `s-${ID}.preview.example.com`],
    ['a short id', `s-${ID.slice(1)}-3000.preview.example.com`],
    ['a long id', `s-${ID}0-3000.preview.example.com`],
    ['a non-Crockford letter in the id (U)', `s-${ID.slice(0, -1)}U-3000.preview.example.com`],
    ['unicode look-alikes', `s-${ID.replace('A', 'А')}-3000.preview.example.com`],
    ['a NUL byte', `s-${ID}-3000\u0000.preview.example.com`],
    ['a CRLF', `s-${ID}-3000.preview.example.com\r\nX: y`],
    ['a huge Host', `s-${ID}-3000.${'a.'.repeat(50_000)}preview.example.com`],
  ])('ignores %s', (_what, host) => {
    expect(parsePreviewHost(host, 'example.com')).toBeUndefined();
  });
});
