import type { IncomingMessage } from 'node:http';

/**
 * The gateway's HTTP strictness (RFC 9112 §3, §6–7; RFC 9110 §7.6). Node's parser (llhttp) already refuses
 * CL with TE, duplicate or non-numeric Content-Length, TE lists that do not end in one `chunked`, obs-fold,
 * control characters and bad chunk sizes; this adds what it lets through, and builds the upstream request.
 */

/** Headers that belong to one connection, not to the message (RFC 9110 §7.6.1), plus `Proxy-Connection`. */
export const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/** What the gateway itself sets about the hop it saw; a client's own values never travel on. */
const FORWARDING = new Set(['x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'forwarded']);

/** A reason phrase or field value: HTAB, SP, VCHAR, obs-text (RFC 9110 §5.5, RFC 9112 §4). */
const FIELD_TEXT = /^[\t\x20-\x7e\x80-\xff]*$/;

/** The request's framing and target once checked, or why it is refused. */
export type Checked =
  | { ok: true; path: string; host: string; body: 'none' | 'chunked' | { length: number } }
  | { ok: false; status: 400 | 431; why: string };

const refuse = (why: string, status: 400 | 431 = 400): Checked => ({ ok: false, status, why });

/** Header values by lowercased name, from raw headers (Node joins or drops duplicates in `req.headers`). */
function all(raw: string[], name: string): string[] {
  const out: string[] = [];
  // Names of another length cannot match: most headers are skipped without lowercasing them.
  for (let i = 0; i + 1 < raw.length; i += 2) if (raw[i]!.length === name.length && raw[i]!.toLowerCase() === name) out.push(raw[i + 1]!);
  return out;
}

/** The Host, Transfer-Encoding and Content-Length values of a request, from one pass over its raw headers. */
function framingFields(raw: string[]): { host: string[]; te: string[]; cl: string[] } {
  const host: string[] = [];
  const te: string[] = [];
  const cl: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const n = raw[i]!;
    if (n.length === 4 && n.toLowerCase() === 'host') host.push(raw[i + 1]!);
    else if (n.length === 17 && n.toLowerCase() === 'transfer-encoding') te.push(raw[i + 1]!);
    else if (n.length === 14 && n.toLowerCase() === 'content-length') cl.push(raw[i + 1]!);
  }
  return { host, te, cl };
}

/**
 * Checks what llhttp lets through: the version, exactly one Host, the target's form (origin-form, an
 * absolute-form naming the same host, `*` for OPTIONS only), a Transfer-Encoding that is exactly `chunked`
 * (and never on HTTP/1.0), a single numeric Content-Length, and the header count. Never throws.
 */
export function checkRequest(req: IncomingMessage, maxHeaders: number): Checked {
  const raw = req.rawHeaders;
  if (raw.length / 2 > maxHeaders) return refuse(`more than ${maxHeaders} header fields; send fewer`, 431);
  if (req.httpVersion !== '1.1' && req.httpVersion !== '1.0') return refuse(`HTTP/${req.httpVersion} is not supported here; use HTTP/1.1`);
  const { host: hosts, te, cl } = framingFields(raw);
  if (hosts.length !== 1) return refuse(hosts.length ? 'more than one Host header; send exactly one' : 'the Host header is missing; send the preview host name');
  const host = hosts[0]!.trim();
  if (!FIELD_TEXT.test(host) || /[\s,/@]/.test(host)) return refuse('the Host header is not a valid host name');

  const target = req.url ?? '';
  let path: string;
  if (target.startsWith('/')) path = target;
  else if (target === '*' && req.method === 'OPTIONS') path = '*';
  else if (/^https?:\/\//i.test(target)) {
    // Absolute-form (RFC 9112 §3.2.2): accepted when it names the same host as the Host header, sent on as origin-form.
    let url: URL;
    try {
      url = new URL(target);
    } catch {
      return refuse('the request target is not a valid URL; send a path such as /index.html');
    }
    if (url.host.toLowerCase() !== host.toLowerCase() || url.username || url.password) return refuse('the absolute request target names another host than the Host header');
    const rest = target.replace(/^https?:\/\/[^/?#]*/i, '');
    path = rest.startsWith('/') ? rest : `/${rest}`;
  } else return refuse('the request target must be a path starting with /');
  if (path.includes('#') || !FIELD_TEXT.test(path) || /[\s]/.test(path)) return refuse('the request target has characters that are not allowed');

  if (te.length && cl.length) return refuse('both Content-Length and Transfer-Encoding are set; send one');
  if (te.length) {
    if (req.httpVersion === '1.0') return refuse('Transfer-Encoding is not allowed in HTTP/1.0; send Content-Length');
    if (te.length > 1 || te[0]!.trim().toLowerCase() !== 'chunked') return refuse('Transfer-Encoding must be exactly "chunked"');
    return { ok: true, path, host, body: 'chunked' };
  }
  if (cl.length) {
    if (cl.length > 1 || !/^\d{1,15}$/.test(cl[0]!.trim())) return refuse('Content-Length must be one decimal number');
    const length = Number(cl[0]!.trim());
    return { ok: true, path, host, body: length > 0 ? { length } : 'none' };
  }
  return { ok: true, path, host, body: 'none' };
}

/** Lowercased names a Connection header lists: they are hop-by-hop for this message only. */
function connectionNamed(raw: string[]): Set<string> | undefined {
  let named: Set<string> | undefined;
  for (const v of all(raw, 'connection')) {
    for (const t of v.split(',')) if (t.trim()) (named ??= new Set()).add(t.trim().toLowerCase());
  }
  return named;
}

const NONE: ReadonlySet<string> = new Set();

/** Pairs of [name, value] without hop-by-hop headers, those named in Connection, and any in `drop`. */
export function endToEnd(raw: string[], drop: ReadonlySet<string> = NONE): [string, string][] {
  const named = connectionNamed(raw);
  const out: [string, string][] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (!HOP_BY_HOP.has(name) && !named?.has(name) && !drop.has(name)) out.push([raw[i]!, raw[i + 1]!]);
  }
  return out;
}

/** Request headers never sent on as they came: framing is re-stated, Expect was already answered by this server (it sent 100 Continue itself), forwarding is the gateway's. */
const NOT_FORWARDED: ReadonlySet<string> = new Set([...FORWARDING, 'content-length', 'expect']);

/** X-Forwarded-For/-Host/-Proto from what the gateway saw on this connection. */
export function forwardedHeaders(req: IncomingMessage, host: string, tls: boolean): [string, string][] {
  return [['x-forwarded-for', req.socket.remoteAddress ?? ''], ['x-forwarded-host', host], ['x-forwarded-proto', tls ? 'https' : 'http']];
}

/** Request headers to send upstream: end-to-end ones, the gateway's forwarding headers and explicit framing. */
export function upstreamRequestHeaders(req: IncomingMessage, checked: Extract<Checked, { ok: true }>, tls: boolean): [string, string][] {
  const headers = endToEnd(req.rawHeaders, NOT_FORWARDED);
  headers.push(...forwardedHeaders(req, checked.host, tls));
  if (checked.body === 'chunked') headers.push(['transfer-encoding', 'chunked']);
  else if (checked.body !== 'none') headers.push(['content-length', String(checked.body.length)]);
  return headers;
}

/** A field name: a token (RFC 9110 §5.1), what Node's validateHeaderName accepts. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** A status line's code and reason, and header pairs, that are safe to write to a client, or why not. */
export function checkResponseHead(status: number | undefined, reason: string | undefined, headers: [string, string][]): string | undefined {
  if (status === undefined || !Number.isInteger(status) || status < 100 || status > 999) return `status ${status} is outside 100-999`;
  if (!FIELD_TEXT.test(reason ?? '')) return 'the reason phrase has control characters';
  // The same rules as Node's validateHeaderName/validateHeaderValue (writeHead throws on what they refuse), without a throw per header.
  for (const [name, value] of headers) if (!TOKEN.test(name) || !FIELD_TEXT.test(value)) return `header ${JSON.stringify(name.slice(0, 64))} is not valid`;
  return undefined;
}

/**
 * A response's framing headers, which llhttp reads leniently (a Transfer-Encoding not ending in chunked means
 * "read until close" there): anything but one `chunked`, or Content-Length twice or beside it, is refused.
 */
export function checkResponseFraming(raw: string[]): string | undefined {
  const te = all(raw, 'transfer-encoding');
  const cl = all(raw, 'content-length');
  if (te.length > 1 || (te.length && te[0]!.trim().toLowerCase() !== 'chunked')) return 'Transfer-Encoding is not exactly "chunked"';
  if (cl.length > 1 || (cl.length && te.length)) return 'the response framing is ambiguous (Content-Length twice, or with Transfer-Encoding)';
  if (cl.length && !/^\d{1,15}$/.test(cl[0]!.trim())) return 'Content-Length is not one decimal number';
  return undefined;
}

/** A parsed upstream response head (status line and fields), as the upgrade path reads it off the socket. */
export interface ResponseHead {
  status: number;
  reason: string;
  headers: [string, string][];
}

/**
 * Parses one response head (without its final CRLF CRLF) strictly: HTTP/1.x, a status 100–999, a clean
 * reason phrase, valid field names and values, no obs-fold, at most one Content-Length and never with
 * Transfer-Encoding. Answers why not as a string. Never throws.
 */
export function parseResponseHead(text: string): ResponseHead | string {
  const lines = text.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(lines[0]!);
  if (!m) return 'the status line is not HTTP/1.x with a three-digit status';
  const headers: [string, string][] = [];
  for (const line of lines.slice(1)) {
    if (/^[ \t]/.test(line)) return 'a header is folded across lines (obs-fold)';
    const colon = line.indexOf(':');
    if (colon <= 0) return 'a header line has no name';
    headers.push([line.slice(0, colon), line.slice(colon + 1).trim()]);
  }
  const why = checkResponseHead(Number(m[1]), m[2] ?? '', headers);
  if (why) return why;
  const framing = checkResponseFraming(headers.flat());
  if (framing) return framing;
  return { status: Number(m[1]), reason: m[2] ?? '', headers };
}
