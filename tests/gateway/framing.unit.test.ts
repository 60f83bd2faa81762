import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { checkRequest, checkResponseFraming, checkResponseHead, endToEnd, parseResponseHead, upstreamRequestHeaders } from '../../src/gateway/framing.ts';

const HOST = 's-01jabcdefghjkmnpqrstvwxyz0-3000.preview.localhost';

/** The fields of a request checkRequest reads, as Node's parser hands them over (flat raw headers). */
function req(o: { raw?: [string, string][]; url?: string; method?: string; version?: string; remote?: string } = {}): IncomingMessage {
  return {
    rawHeaders: (o.raw ?? [['Host', HOST]]).flat(), url: o.url ?? '/', method: o.method ?? 'GET', httpVersion: o.version ?? '1.1',
    socket: { remoteAddress: o.remote ?? '10.0.0.9' },
  } as unknown as IncomingMessage;
}
const refused = (r: ReturnType<typeof checkRequest>) => (r.ok ? undefined : [r.status, r.why] as const);

describe('the gateway request check', () => {
  it('accepts origin-form with one Host, and reads the body framing', () => {
    expect(checkRequest(req({ url: '/a/b?c=d' }), 100)).toEqual({ ok: true, path: '/a/b?c=d', host: HOST, body: 'none' });
    expect(checkRequest(req({ method: 'POST', raw: [['Host', HOST], ['Content-Length', '12']] }), 100)).toMatchObject({ ok: true, body: { length: 12 } });
    expect(checkRequest(req({ method: 'POST', raw: [['Host', HOST], ['Content-Length', '0']] }), 100)).toMatchObject({ ok: true, body: 'none' });
    expect(checkRequest(req({ method: 'POST', raw: [['Host', HOST], ['Transfer-Encoding', ' Chunked ']] }), 100)).toMatchObject({ ok: true, body: 'chunked' });
    expect(checkRequest(req({ method: 'OPTIONS', url: '*' }), 100)).toMatchObject({ ok: true, path: '*' });
  });

  it('accepts absolute-form naming the same host and sends it on as origin-form', () => {
    expect(checkRequest(req({ url: `http://${HOST.toUpperCase()}/x?y` }), 100)).toMatchObject({ ok: true, path: '/x?y' });
    expect(checkRequest(req({ url: `https://${HOST}` }), 100)).toMatchObject({ ok: true, path: '/' });
    expect(checkRequest(req({ url: `HTTP://${HOST}?q=1` }), 100)).toMatchObject({ ok: true, path: '/?q=1' });
  });

  it.each([
    ['no Host', { raw: [] }, 400, /Host header is missing/],
    ['two Hosts', { raw: [['Host', HOST], ['host', HOST]] }, 400, /more than one Host/],
    ['a Host with a comma', { raw: [['Host', `${HOST}, evil.example`]] }, 400, /not a valid host name/],
    ['a Host with userinfo', { raw: [['Host', `a@${HOST}`]] }, 400, /not a valid host name/],
    ['a Host with a slash', { raw: [['Host', `${HOST}/x`]] }, 400, /not a valid host name/],
    ['a Host with a control character', { raw: [['Host', `${HOST}\u0001`]] }, 400, /not a valid host name/],
    ['HTTP/2.0', { version: '2.0' }, 400, /HTTP\/2\.0 is not supported/],
    ['HTTP/0.9', { version: '0.9' }, 400, /not supported/],
    ['an absolute-form naming another host', { url: 'http://evil.example/x' }, 400, /names another host/],
    ['an absolute-form with credentials', { url: `http://user:pw@${HOST}/x` }, 400, /names another host/],
    ['a malformed absolute-form', { url: 'http://[zz/x' }, 400, /not a valid URL/],
    ['an asterisk outside OPTIONS', { url: '*' }, 400, /must be a path/],
    ['a relative target', { url: 'x/y' }, 400, /must be a path/],
    ['a fragment', { url: '/a#b' }, 400, /not allowed/],
    ['a space in the target', { url: '/a b' }, 400, /not allowed/],
    ['a tab in the target', { url: '/a\tb' }, 400, /not allowed/],
    ['a NUL in the target', { url: '/a\u0000b' }, 400, /not allowed/],
    ['Content-Length with Transfer-Encoding', { raw: [['Host', HOST], ['Content-Length', '5'], ['Transfer-Encoding', 'chunked']] }, 400, /both Content-Length and Transfer-Encoding/],
    ['Transfer-Encoding on HTTP/1.0', { version: '1.0', raw: [['Host', HOST], ['Transfer-Encoding', 'chunked']] }, 400, /not allowed in HTTP\/1\.0/],
    ['Transfer-Encoding gzip, chunked', { raw: [['Host', HOST], ['Transfer-Encoding', 'gzip, chunked']] }, 400, /exactly "chunked"/],
    ['Transfer-Encoding twice', { raw: [['Host', HOST], ['Transfer-Encoding', 'chunked'], ['Transfer-Encoding', 'chunked']] }, 400, /exactly "chunked"/],
    ['Content-Length twice', { raw: [['Host', HOST], ['Content-Length', '1'], ['Content-Length', '1']] }, 400, /one decimal number/],
    ['a signed Content-Length', { raw: [['Host', HOST], ['Content-Length', '+1']] }, 400, /one decimal number/],
    ['a hex Content-Length', { raw: [['Host', HOST], ['Content-Length', '0x10']] }, 400, /one decimal number/],
    ['a 16-digit Content-Length', { raw: [['Host', HOST], ['Content-Length', '1'.repeat(16)]] }, 400, /one decimal number/],
  ] as const)('refuses %s, saying why', (_what, o, status, why) => {
    const r = refused(checkRequest(req(o as Parameters<typeof req>[0]), 100));
    expect(r?.[0]).toBe(status);
    expect(r?.[1]).toMatch(why);
  });

  it('refuses more header fields than the limit with 431, before looking at anything else', () => {
    const raw = Array.from({ length: 101 }, (_, i) => [`X-${i}`, 'v'] as [string, string]);
    expect(refused(checkRequest(req({ raw, version: '9.9' }), 100))).toEqual([431, 'more than 100 header fields; send fewer']);
    expect(checkRequest(req({ raw: [['Host', HOST], ...raw.slice(0, 99)] }), 100).ok).toBe(true);
  });

  it('answers a huge or unicode target without throwing', () => {
    expect(checkRequest(req({ url: `/${'a'.repeat(1 << 20)}` }), 100).ok).toBe(true);
    expect(checkRequest(req({ url: '/\u00e9' }), 100).ok).toBe(true); // obs-text as Node hands it over (latin1)
    expect(refused(checkRequest(req({ url: '/\u2028' }), 100))?.[0]).toBe(400);
  });
});

describe('the headers the gateway sends on', () => {
  it('drops hop-by-hop headers and those Connection names, in any case, keeping the rest in order', () => {
    const raw = [['Host', 'h'], ['Connection', 'keep-alive, X-Secret , Upgrade'], ['X-Secret', 's'], ['Keep-Alive', '5'], ['TE', 'trailers'], ['Upgrade', 'ws'],
      ['Proxy-Connection', 'x'], ['Transfer-Encoding', 'chunked'], ['Accept', '*/*'], ['x-secret', 's2'], ['Cookie', 'a=b']].flat();
    expect(endToEnd(raw)).toEqual([['Host', 'h'], ['Accept', '*/*'], ['Cookie', 'a=b']]);
    expect(endToEnd(raw, new Set(['cookie']))).toEqual([['Host', 'h'], ['Accept', '*/*']]);
  });

  it("replaces a client's forwarding headers and framing with the gateway's own", () => {
    const r = req({ method: 'POST', raw: [['Host', HOST], ['X-Forwarded-For', '1.2.3.4'], ['Forwarded', 'for=1.2.3.4'], ['X-Forwarded-Host', 'evil'], ['Expect', '100-continue'], ['Content-Length', '3'], ['Accept', 'a']], remote: '10.0.0.9' });
    const checked = checkRequest(r, 100);
    if (!checked.ok) throw new Error(checked.why);
    expect(upstreamRequestHeaders(r, checked, true)).toEqual([
      ['Host', HOST], ['Accept', 'a'], ['x-forwarded-for', '10.0.0.9'], ['x-forwarded-host', HOST], ['x-forwarded-proto', 'https'], ['content-length', '3'],
    ]);
    const chunked = req({ method: 'POST', raw: [['Host', HOST], ['Transfer-Encoding', 'chunked']] });
    const c = checkRequest(chunked, 100);
    if (!c.ok) throw new Error(c.why);
    expect(upstreamRequestHeaders(chunked, c, false).slice(-2)).toEqual([['x-forwarded-proto', 'http'], ['transfer-encoding', 'chunked']]);
  });
});

describe('the upstream response check', () => {
  it('accepts a valid head and says what is wrong with a bad one', () => {
    expect(checkResponseHead(200, 'OK', [['Content-Type', 'text/html'], ['X-Ünïcode', 'é']])).toMatch(/header "X-Ünïcode" is not valid/);
    expect(checkResponseHead(200, 'OK', [['Content-Type', 'text/html; charset=\u00e9']])).toBeUndefined();
    for (const status of [undefined, 99, 1000, 200.5, NaN]) expect(checkResponseHead(status, 'OK', []), String(status)).toMatch(/outside 100-999/);
    expect(checkResponseHead(200, 'O\rK', [])).toMatch(/control characters/);
    expect(checkResponseHead(200, 'OK', [['X', 'a\nb']])).toMatch(/not valid/);
    expect(checkResponseHead(200, 'OK', [['Bad Name', 'v']])).toMatch(/not valid/);
    expect(checkResponseHead(200, 'OK', [['N'.repeat(10_000), '\u0000']])).toBe(`header ${JSON.stringify('N'.repeat(64))} is not valid`);
  });

  it('refuses ambiguous response framing (what llhttp reads leniently)', () => {
    expect(checkResponseFraming(['Transfer-Encoding', 'chunked'])).toBeUndefined();
    expect(checkResponseFraming(['Content-Length', '10'])).toBeUndefined();
    expect(checkResponseFraming(['Transfer-Encoding', 'gzip'])).toMatch(/not exactly "chunked"/);
    expect(checkResponseFraming(['Transfer-Encoding', 'chunked', 'transfer-encoding', 'chunked'])).toMatch(/not exactly "chunked"/);
    expect(checkResponseFraming(['Content-Length', '1', 'content-length', '1'])).toMatch(/ambiguous/);
    expect(checkResponseFraming(['Content-Length', '1', 'Transfer-Encoding', 'chunked'])).toMatch(/ambiguous/);
    expect(checkResponseFraming(['Content-Length', '-1'])).toMatch(/not one decimal number/);
  });

  it('parses an upgrade response head strictly, never throwing on garbage', () => {
    expect(parseResponseHead('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection:  Upgrade ')).toEqual({
      status: 101, reason: 'Switching Protocols', headers: [['Upgrade', 'websocket'], ['Connection', 'Upgrade']],
    });
    expect(parseResponseHead('HTTP/1.0 204')).toEqual({ status: 204, reason: '', headers: [] });
    expect(parseResponseHead('HTTP/2 200 OK')).toMatch(/not HTTP\/1\.x/);
    expect(parseResponseHead('HTTP/1.1 20 OK')).toMatch(/three-digit/);
    expect(parseResponseHead('HTTP/1.1 200 OK\r\nA: b\r\n c')).toMatch(/obs-fold/);
    expect(parseResponseHead('HTTP/1.1 200 OK\r\n: no name')).toMatch(/no name/);
    expect(parseResponseHead('HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked')).toMatch(/ambiguous/);
    for (const junk of ['', '\u0000'.repeat(1000), 'HTTP/1.1 200 OK\r\n'.repeat(10_000), '😀😀😀', 'HTTP/1.1 200 \u0007']) {
      expect(typeof parseResponseHead(junk), JSON.stringify(junk.slice(0, 20))).toBe('string');
    }
  });
});
