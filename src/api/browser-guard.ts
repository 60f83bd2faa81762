import { isIPv6 } from 'node:net';
import { AppError } from '../errors.ts';

/**
 * What keeps web pages out of an API that runs without auth (SANDBOXD_API_AUTH_DISABLED=true, loopback
 * only). A browser is the one client that reaches loopback on someone else's behalf: a page can POST
 * `text/plain` without a preflight, open a WebSocket to any address, and read answers under a rebound DNS
 * name. It cannot hide what it is doing, though: it sends the page's `Origin` on every cross-origin POST and
 * WebSocket upgrade (and `Sec-Fetch-Site`), and the name it resolved as `Host`. So with auth off a request
 * must name a loopback address with the API's own port, carry no foreign Origin, and carry no proxy header
 * (something in front means the caller is not local). With auth on, WebSocket upgrades keep the Origin rule.
 * Everything here is pure: headers in, a refusal (or undefined) out.
 */

/** The configuration the guard needs: whether auth is off and the port the API listens on. */
export interface GuardPolicy {
  authDisabled: boolean;
  apiPort: number;
}

/** Paths answered to any Host, Origin or proxy: read-only liveness and readiness with nothing secret in them. */
export const PROBE_PATHS: ReadonlySet<string> = new Set(['/healthz', '/readyz']);

const TURN_AUTH_ON = 'turn auth on (SANDBOXD_API_AUTH_DISABLED=false with SANDBOXD_API_TOKENS)';

/** Header names that say a proxy or load balancer forwarded the request. */
function isForwardingHeader(lower: string): boolean {
  return lower === 'forwarded' || lower === 'x-real-ip' || lower === 'via' || lower.startsWith('x-forwarded-');
}

/** Every value of every header, by lowercase name, from Node's flat rawHeaders (duplicates kept). */
function headerMap(rawHeaders: readonly string[]): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    const list = map.get(name);
    if (list) list.push(rawHeaders[i + 1]!);
    else map.set(name, [rawHeaders[i + 1]!]);
  }
  return map;
}

/** A Host (or URL authority) split into a lowercase name and its port, or undefined when it is not one. */
export function parseAuthority(value: string): { name: string; port: number | undefined } | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+))(?::(\d{1,5}))?$/.exec(value.trim());
  if (!m) return undefined;
  const port = m[3] === undefined ? undefined : Number(m[3]);
  if (port !== undefined && (port < 1 || port > 65535)) return undefined;
  if (m[1] !== undefined) {
    if (!isIPv6(m[1])) return undefined;
    // The URL parser writes an IPv6 address in its one canonical form, so [0:0::1] and [::1] compare equal.
    return { name: new URL(`http://[${m[1]}]/`).hostname, port };
  }
  return { name: m[2]!.toLowerCase(), port };
}

/** True for the names that always mean this machine: `localhost`, 127.0.0.0/8 in dotted quads, and [::1]. */
export function isLoopbackName(name: string): boolean {
  if (name === 'localhost' || name === '[::1]') return true;
  const quad = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(name);
  return quad !== null && quad.slice(1).every((o) => Number(o) <= 255);
}

/** Shortened for messages: a header is attacker input and may be long. */
const shown = (value: string) => JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);

/** The loopback Host rule: a loopback name with the API's port (no port only when the API is on 80). */
function checkHost(value: string | undefined, what: string, policy: GuardPolicy): AppError | undefined {
  const refuse = (got: string) => new AppError('misdirected_host', `${what} ${got} is not this API's loopback address: with auth off the API answers only 127.0.0.1:${policy.apiPort}, localhost:${policy.apiPort} or [::1]:${policy.apiPort} (so a rebound DNS name cannot reach it); call http://127.0.0.1:${policy.apiPort}, or ${TURN_AUTH_ON} to serve other names`, { field: what });
  if (value === undefined) return refuse('is missing');
  const host = parseAuthority(value);
  if (!host || !isLoopbackName(host.name) || (host.port ?? 80) !== policy.apiPort) return refuse(shown(value));
  return undefined;
}

/** True when `origin` is this API's own: http on a loopback name with the API's port. */
function isOwnLoopbackOrigin(origin: string, policy: GuardPolicy): boolean {
  const m = /^http:\/\/([^/?#@]+)$/i.exec(origin.trim());
  const host = m ? parseAuthority(m[1]!) : undefined;
  return host !== undefined && isLoopbackName(host.name) && (host.port ?? 80) === policy.apiPort;
}

/** True when `origin` names the same host and port the request was sent to (http or https, a proxy may end TLS). */
function isSameOrigin(origin: string, hostHeader: string | undefined): boolean {
  const m = /^(https?):\/\/([^/?#@]+)$/i.exec(origin.trim());
  const from = m ? parseAuthority(m[2]!) : undefined;
  const to = hostHeader === undefined ? undefined : parseAuthority(hostHeader);
  if (!m || !from || !to) return false;
  const defaultPort = m[1]!.toLowerCase() === 'https' ? 443 : 80;
  return from.name === to.name && (from.port ?? defaultPort) === (to.port ?? defaultPort);
}

/** The Origin rule: absent, or the API's own origin; `null` and repeated Origins are foreign. */
function checkOrigin(origins: string[] | undefined, own: (origin: string) => boolean, advice: string): AppError | undefined {
  if (!origins) return undefined;
  if (origins.length === 1 && own(origins[0]!)) return undefined;
  return new AppError('forbidden_origin', `Origin ${shown(origins.join(', '))} is not this API's own origin: a web page may not call it (it could act as you); ${advice}`, { field: 'origin' });
}

/**
 * The refusal for a request to an API running with auth off, or undefined when it may go on: proxy
 * headers, then Host (and an absolute-form target's authority), then Origin and Sec-Fetch-Site.
 */
export function checkLocalRequest(rawHeaders: readonly string[], target: string | undefined, policy: GuardPolicy): AppError | undefined {
  const headers = headerMap(rawHeaders);
  for (const name of headers.keys()) {
    if (isForwardingHeader(name)) {
      return new AppError('forbidden_forwarded', `the request carries a ${name} header: something sits in front of the API, so the caller is not local, and with auth off the API serves only direct loopback clients; call it directly, or ${TURN_AUTH_ON} to serve it through a proxy`, { field: name });
    }
  }
  const hosts = headers.get('host');
  if (hosts && hosts.length > 1) return new AppError('misdirected_host', 'more than one Host header; send exactly one', { field: 'host' });
  const wrongHost = checkHost(hosts?.[0], 'Host', policy);
  if (wrongHost) return wrongHost;
  const absolute = target !== undefined && /^https?:\/\/([^/?#]*)/i.exec(target);
  if (absolute) {
    const wrongTarget = checkHost(absolute[1]!, 'the request target\'s host', policy);
    if (wrongTarget) return wrongTarget;
  }
  const advice = `call it from a program (curl, an SDK), or ${TURN_AUTH_ON} to call the API from another origin`;
  const foreign = checkOrigin(headers.get('origin'), (o) => isOwnLoopbackOrigin(o, policy), advice);
  if (foreign) return foreign;
  // Browsers label every request with where it comes from; a cross-site one is refused even without Origin (a no-cors GET).
  const site = headers.get('sec-fetch-site')?.map((v) => v.trim().toLowerCase());
  if (site?.some((v) => v === 'cross-site' || v === 'same-site')) {
    return new AppError('forbidden_origin', `Sec-Fetch-Site ${shown(site.join(', '))}: the request comes from another site's page, and with auth off the API refuses web pages; ${advice}`, { field: 'sec-fetch-site' });
  }
  return undefined;
}

/**
 * The refusal for a WebSocket upgrade, or undefined: with auth off every rule of checkLocalRequest; with
 * auth on, an Origin must be the origin the upgrade was sent to (the Host), so no other site's page opens one.
 */
export function checkUpgrade(rawHeaders: readonly string[], target: string | undefined, policy: GuardPolicy): AppError | undefined {
  if (policy.authDisabled) return checkLocalRequest(rawHeaders, target, policy);
  const headers = headerMap(rawHeaders);
  const host = headers.get('host');
  return checkOrigin(headers.get('origin'), (o) => host?.length === 1 && isSameOrigin(o, host[0]), 'open WebSockets from a program (a server, a CLI), which sends no Origin, or from a page served on the API\'s own origin');
}
