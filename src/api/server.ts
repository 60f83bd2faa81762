import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { AppError } from '../errors.ts';
import { errorMessage } from '../log.ts';
import { reportUnexpected } from '../boundary.ts';
import { answerClientError } from '../http/client-error.ts';
import { decodeComponent, parseTarget } from '../http/target.ts';
import { activityRoutes } from './activity.ts';
import { execRoutes } from './exec.ts';
import { execWsRoutes } from './exec-ws.ts';
import { archiveRoutes } from './archive.ts';
import { fileRoutes } from './files.ts';
import { processRoutes } from './processes.ts';
import { healthRoutes } from './health.ts';
import { parseJson, readBody, sendError, sendJson } from './http.ts';
import { readmeRoutes } from './readme-routes.ts';
import { compile, match, type ApiDeps, type Route, type WsRoute } from './route.ts';
import { sandboxRoutes } from './sandboxes.ts';
import { taskRoutes, taskWsRoutes } from './tasks.ts';
import { secretRoutes } from './secrets.ts';
import { attachWebSockets } from './upgrade.ts';
import { checkLocalRequest, PROBE_PATHS } from './browser-guard.ts';
import { clientErrorOf } from '../health/failures.ts';
import { validate } from './validate.ts';

/** Every HTTP route the API serves, in match order. */
export function allRoutes(): Route[] {
  const routes: Route[] = [...sandboxRoutes, ...activityRoutes, ...readmeRoutes, ...execRoutes, ...processRoutes, ...fileRoutes, ...archiveRoutes, ...taskRoutes, ...secretRoutes];
  return [...healthRoutes(() => [...routes, ...execWsRoutes.map(wsRouteDoc)]), ...routes];
}

/** A WebSocket route as the OpenAPI document shows it (a GET answered with 101). */
function wsRouteDoc(r: WsRoute): Route {
  return {
    method: 'GET', path: r.path, operationId: r.operationId, summary: r.summary, tags: r.tags,
    ...(r.query ? { query: r.query } : {}),
    response: { status: 101, description: 'Switching Protocols: a WebSocket.' },
    handler: () => undefined,
  };
}

/** A route without a request body accepts none, or `{}` (clients that always send JSON); anything else is a mistake worth naming. */
function refuseBody(raw: Buffer): void {
  const text = raw.toString('utf8').trim();
  if (text && text.replace(/\s+/g, '') !== '{}') throw new AppError('invalid_request', 'body: this route takes no request body (send none, or {})');
}

/** Most bytes of a refused upload read and dropped so the client gets its 413 rather than a reset. */
const DISCARD_MAX_BYTES = 16 << 20;

/** Drops the rest of a refused upload so the connection stays usable; past a bound or a time limit the connection is cut instead. */
function discardUpload(req: IncomingMessage): void {
  let dropped = 0;
  const timer = setTimeout(() => req.destroy(), 10_000);
  timer.unref();
  req.on('data', (chunk: Buffer) => {
    dropped += chunk.length;
    if (dropped > DISCARD_MAX_BYTES) req.destroy();
  });
  req.on('end', () => clearTimeout(timer));
  req.on('close', () => clearTimeout(timer));
  req.resume();
}

const REQUEST_ID_RE = /^[A-Za-z0-9._:-]{1,64}$/;

/** The client's X-Request-Id when it is sane, else a new one. */
function requestIdOf(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && REQUEST_ID_RE.test(given) ? given : `req_${randomUUID()}`;
}

/** The REST API: request ids, auth, validation before any side effect, one error envelope. */
export function createApiServer(deps: ApiDeps): Server {
  const routes = allRoutes().map(compile);
  // With the API's sinks it limits failed attempts per address and audits them sampled (src/api/auth-failures.ts).
  const { auth } = deps;

  const handle = async (req: IncomingMessage, res: ServerResponse, requestId: string) => {
    const url = parseTarget(req.url);
    if (!url) throw new AppError('invalid_request', 'the request target is not a valid path; send a path such as /v1/sandboxes');
    // With auth off, only a local program may drive the API: no web page, no rebound DNS name, no proxy in front.
    if (deps.config.authDisabled && !PROBE_PATHS.has(url.pathname)) {
      const refused = checkLocalRequest(req.rawHeaders, req.url, { authDisabled: true, apiPort: deps.config.api.port });
      if (refused) {
        deps.metrics.inc('sandboxd_api_browser_refusals_total', 'API requests and upgrades refused for their Host, Origin or proxy headers, by code.', { code: refused.code });
        throw refused;
      }
    }
    const found = match(routes, req.method ?? 'GET', url.pathname);
    if (found === undefined) throw new AppError('not_found', `no route for ${req.method} ${url.pathname}; see /openapi.json`);
    if (found === 'methodMismatch') throw new AppError('method_not_allowed', `${req.method} is not allowed on ${url.pathname}; see /openapi.json`);
    const { route } = found;
    const t0 = performance.now();
    res.once('finish', () => {
      const labels = { operation: route.operationId, status: String(res.statusCode) };
      deps.metrics.inc('sandboxd_http_requests_total', 'API requests by operation and status.', labels);
      deps.metrics.observe('sandboxd_http_request_duration_seconds', 'API time to the end of the response, by operation.', { operation: route.operationId }, (performance.now() - t0) / 1000);
    });

    let caller = { name: 'anonymous', admin: false };
    if (!route.open) {
      caller = auth.authenticate(req, { route: route.operationId, requestId });
    }

    const params: Record<string, string> = {};
    for (const [k, v] of Object.entries(found.params)) {
      const decoded = decodeComponent(v);
      if (decoded === undefined) throw new AppError('invalid_request', `${k}: not valid percent-encoding`, { field: k });
      params[k] = decoded;
    }

    const query = route.query ? validate(route.query, queryObject(url, route), 'query') : {};
    let body: unknown = undefined;
    if (!route.rawBody) {
      const raw = await readBody(req, deps.config.maxBodyBytes);
      if (route.body) body = validate(route.body, parseJson(raw, route.bodyOptional ?? false), 'body');
      else refuseBody(raw);
    }

    const reply = await route.handler({ req, res, params, body, query, caller, requestId, deps });
    if (!reply) return;
    if (typeof reply.body === 'string') {
      res.writeHead(reply.status, { 'content-length': Buffer.byteLength(reply.body), ...reply.headers });
      res.end(reply.body);
    } else {
      sendJson(res, reply.status, reply.body, reply.headers);
    }
  };

  /** The one place a failed request is answered: known errors with their envelope, anything else as 500. */
  const fail = (req: IncomingMessage, res: ServerResponse, requestId: string, thrown: unknown) => {
    if (req.socket.destroyed) {
      // The client hung up (mid-upload, mid-stream): nobody is left to answer, and it is not the daemon's fault.
      deps.metrics.inc('sandboxd_http_client_gone_total', 'API requests whose client disconnected before the answer.', {});
      return void res.destroy();
    }
    const { err, engineDown } = clientErrorOf(thrown, deps.config.dataDir);
    if (engineDown) deps.log.warn('the container engine is unreachable', { request_id: requestId, error: errorMessage(thrown) });
    if (err instanceof AppError) {
      const headers: Record<string, string> = err.code === 'unauthorized' ? { 'www-authenticate': 'Bearer' } : {};
      if (err.retryAfterS !== undefined) headers['retry-after'] = String(err.retryAfterS);
      sendError(res, err, requestId, headers);
      if (err.code === 'too_large') discardUpload(req);
      return;
    }
    reportUnexpected(deps.log, deps.metrics, 'api', err, { request_id: requestId, method: req.method, path: req.url?.split('?')[0]?.slice(0, 200) });
    sendError(res, new AppError('internal', `internal error; quote request id ${requestId} when reporting it`), requestId);
  };

  const { api } = deps.config.limits;
  const server = createServer({ requestTimeout: api.requestTimeoutS * 1000, headersTimeout: api.headersTimeoutS * 1000, maxHeaderSize: api.maxHeaderBytes, keepAliveTimeout: 5000, connectionsCheckingInterval: 1000 }, (req, res) => {
    const requestId = requestIdOf(req);
    // A client that resets mid-answer is its own problem: its errors must not reach the process.
    req.on('error', () => undefined);
    res.on('error', () => undefined);
    try {
      res.setHeader('x-request-id', requestId);
      handle(req, res, requestId).catch((thrown: unknown) => {
        try {
          fail(req, res, requestId, thrown);
        } catch (second) {
          reportUnexpected(deps.log, deps.metrics, 'api', second, { request_id: requestId });
          res.destroy();
        }
      });
    } catch (thrown) {
      reportUnexpected(deps.log, deps.metrics, 'api', thrown, { request_id: requestId });
      res.destroy();
    }
  });
  server.maxHeadersCount = api.maxHeaders;
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    const status = answerClientError(err, socket, `req_${randomUUID()}`);
    deps.metrics.inc('sandboxd_http_client_errors_total', 'Requests the HTTP parser refused (malformed, oversized, too slow), by listener and status.', { listener: 'api', status: String(status) });
  });
  attachWebSockets(server, [...execWsRoutes, ...taskWsRoutes], deps, auth, requestIdOf);
  return server;
}

/** Query parameters as an object; keys the schema declares as arrays collect every repeat, others keep one value. */
function queryObject(url: URL, route: Route): Record<string, unknown> {
  const props = (route.query as { properties?: Record<string, { type?: string }> } | undefined)?.properties ?? {};
  const out: Record<string, unknown> = {};
  for (const key of new Set(url.searchParams.keys())) {
    const values = url.searchParams.getAll(key);
    if (props[key]?.type === 'array') out[key] = values;
    else if (values.length > 1) throw new AppError('invalid_request', `query.${key}: given ${values.length} times; give it once`, { field: `query.${key}` });
    else out[key] = values[0];
  }
  return out;
}
