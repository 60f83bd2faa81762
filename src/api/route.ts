import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TSchema } from '@sinclair/typebox';
import type { WebSocket } from 'ws';
import type { Config } from '../config.ts';
import type { PreviewTokens } from '../gateway/preview-tokens.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { Runtime } from '../runtime/runtime.ts';
import type { WorkerPool } from '../pool.ts';
import type { Activity } from '../sandboxes/activity.ts';
import type { Lifecycle } from '../sandboxes/lifecycle.ts';
import type { Store } from '../store/index.ts';
import type { Tasks } from '../tasks/service.ts';
import type { Workspaces } from '../workspaces/workspaces.ts';
import type { Authenticator, Caller } from './auth.ts';

/** What route handlers may use; nothing else reaches them. */
export interface ApiDeps {
  config: Config;
  store: Store;
  runtime: Runtime;
  lifecycle: Lifecycle;
  pool: WorkerPool;
  metrics: Metrics;
  auth: Authenticator;
  workspaces: Workspaces;
  activity: Activity;
  previewTokens: PreviewTokens;
  tasks: Tasks;
  log: Logger;
}

/** One request, after auth and validation. */
export interface RequestContext<B = unknown, Q = unknown> {
  req: IncomingMessage;
  res: ServerResponse;
  params: Record<string, string>;
  body: B;
  query: Q;
  caller: Caller;
  requestId: string;
  deps: ApiDeps;
}

export interface Reply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

/** A route declares its schemas next to its handler, so validation and the OpenAPI document share one source. */
export interface Route<B = any, Q = any> {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** OpenAPI-style path: /v1/sandboxes/{id} */
  path: string;
  operationId: string;
  summary: string;
  tags: string[];
  /** Open routes (health) skip auth. */
  open?: boolean;
  body?: TSchema;
  /** An empty body stands for `{}` (the README's keepalive and create send none). */
  bodyOptional?: boolean;
  /** The handler reads the request body itself (uploads larger than the JSON body limit). */
  rawBody?: boolean;
  query?: TSchema;
  /** `contentType` when it is not JSON (an event stream); `schema` then describes one item of it. */
  response: { status: number; schema?: TSchema; description: string; contentType?: string };
  /** Answers a Reply, or nothing when it has written the response itself (streams). */
  handler(ctx: RequestContext<B, Q>): Promise<Reply | void> | Reply | void;
}

/** A route plus its compiled path matcher. */
export interface CompiledRoute {
  route: Route;
  pattern: RegExp;
  names: string[];
}

export function compile(route: Route): CompiledRoute {
  const names: string[] = [];
  const source = route.path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\\?\{(\w+)\\?\}|\{(\w+)\}/g, (_m, a, b) => {
    names.push(a ?? b);
    return '([^/]+)';
  });
  return { route, pattern: new RegExp(`^${source}$`), names };
}

/** Finds the route for a method and path; `methodMismatch` when the path exists under another method. */
export function match(routes: CompiledRoute[], method: string, path: string): { route: Route; params: Record<string, string> } | 'methodMismatch' | undefined {
  let pathMatched = false;
  for (const c of routes) {
    const m = c.pattern.exec(path);
    if (!m) continue;
    pathMatched = true;
    if (c.route.method !== method) continue;
    const params: Record<string, string> = {};
    c.names.forEach((n, i) => (params[n] = m[i + 1]!));
    return { route: c.route, params };
  }
  return pathMatched ? 'methodMismatch' : undefined;
}

/** A WebSocket endpoint: `open` runs before the handshake (auth, lookup, validation answer as HTTP errors), then `run` owns the socket. */
export interface WsRoute<Q = any> {
  path: string;
  operationId: string;
  summary: string;
  tags: string[];
  query?: TSchema;
  open(ctx: RequestContext<undefined, Q>): Promise<(ws: WebSocket) => void> | ((ws: WebSocket) => void);
}
