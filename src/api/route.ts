import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TSchema } from '@sinclair/typebox';
import type { WebSocket } from 'ws';
import type { Config } from '../config.ts';
import type { PreviewGrants } from '../auth/preview-grants.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { Activity } from '../sandboxes/activity.ts';
import type { Lifecycle } from '../sandboxes/lifecycle.ts';
import type { Wakes } from '../sandboxes/wake.ts';
import type { SessionLimits } from '../exec/sessions.ts';
import type { Health } from '../health/service.ts';
import type { Exec } from '../exec/service.ts';
import type { SandboxDirectory } from '../sandboxes/directory.ts';
import type { Files } from '../files/service.ts';
import type { Processes } from '../processes/service.ts';
import type { Tasks } from '../tasks/service.ts';
import type { Secrets } from '../secrets/service.ts';
import type { Authenticator, Caller } from '../auth/authenticator.ts';

/** What route handlers may use; nothing else reaches them. */
export interface ApiDeps {
  config: Config;
  lifecycle: Lifecycle;
  wakes: Wakes;
  sessions: SessionLimits;
  health: Health;
  exec: Exec;
  sandboxes: SandboxDirectory;
  files: Files;
  processes: Processes;
  metrics: Metrics;
  auth: Authenticator;
  activity: Activity;
  previewGrants: PreviewGrants;
  tasks: Tasks;
  secrets: Secrets;
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
