import type { WebSocket } from 'ws';
import { AppError } from '../errors.ts';
import { normaliseId } from '../ids.ts';
import type { TaskRecord } from '../model/task.ts';
import { agentFor } from '../tasks/agents/index.ts';
import type { TaskEvent } from '../model/task-events.ts';
import { actorOf, findSandbox } from './lookup.ts';
import type { RequestContext, Route, WsRoute } from './route.ts';
import { NoQuery } from './schemas.ts';
import { iso } from './view.ts';
import { CreateTask, EventsQuery, Task, TaskCreated, TaskEventSchema, TaskList, TaskListQuery } from './task-schemas.ts';

function eventsUrl(t: TaskRecord): string {
  return `/v1/sandboxes/${t.sandboxId}/tasks/${t.id}/events`;
}

function taskView(t: TaskRecord): Task {
  return {
    id: t.id, sandbox_id: t.sandboxId, agent: t.agent, model: t.model, prompt: t.prompt, timeout_s: t.timeoutS,
    status: t.status, phase: t.phase, reason: t.reason, error: t.error, result: t.result,
    created_at: iso(t.createdAt)!, finished_at: iso(t.finishedAt), events_url: eventsUrl(t),
  };
}

/** An event as clients receive it: its sequence number, type, time and fields. */
function eventView(e: TaskEvent): Record<string, unknown> {
  const { seq, type, at, ...fields } = e;
  return { seq, type, at: new Date(at).toISOString(), ...fields };
}

/** The task `{taskId}` of the sandbox `{id}`, if the caller may see the sandbox. */
function findTask(ctx: RequestContext): TaskRecord {
  const sandbox = findSandbox(ctx);
  const raw = ctx.params.taskId ?? '';
  const id = normaliseId(raw);
  if (!id) throw new AppError('invalid_request', `taskId: '${raw.slice(0, 80)}' is not a task id (ULID)`, { field: 'taskId' });
  const task = ctx.deps.tasks.get(id);
  if (!task || task.sandboxId !== sandbox.id) throw new AppError('not_found', `task '${raw.slice(0, 80)}' not found in sandbox ${sandbox.id}`);
  return task;
}

/** Where a stream starts: `?since=N`, else the `Last-Event-ID` header a reconnecting EventSource sends, else the beginning. */
function startAfter(ctx: RequestContext<unknown, EventsQuery>): number {
  if (ctx.query.since !== undefined) return ctx.query.since;
  const header = ctx.req.headers['last-event-id'];
  if (header === undefined) return 0;
  const value = Array.isArray(header) ? header[0] : header;
  if (!value || !/^\d{1,15}$/.test(value.trim())) throw new AppError('invalid_request', 'Last-Event-ID: expected the sequence number of the last event received', { field: 'Last-Event-ID' });
  return Number(value.trim());
}

async function createTask(ctx: RequestContext<CreateTask>) {
  const body = ctx.body;
  const { maxTimeoutS } = ctx.deps.config.tasks;
  if (body.timeout_s !== undefined && body.timeout_s > maxTimeoutS) {
    throw new AppError('invalid_request', `body.timeout_s: at most ${maxTimeoutS} (SANDBOXD_TASK_MAX_TIMEOUT_S)`, { field: 'body.timeout_s' });
  }
  const problem = agentFor(body.agent).envProblem(body.env ?? {});
  if (problem) throw new AppError('invalid_request', `body.${problem}`, { field: `body.${problem.split(':')[0]}` });
  const sandbox = findSandbox(ctx);
  const task = await ctx.deps.tasks.submit(sandbox, body, actorOf(ctx));
  return { status: 202, body: { id: task.id, status: 'running', events_url: eventsUrl(task) } };
}

/** Server-Sent Events: replay after the start point, then live events, until `done`; paced by the socket's back-pressure. */
function streamEvents(ctx: RequestContext<unknown, EventsQuery>): void {
  const task = findTask(ctx);
  const since = startAfter(ctx);
  const { res } = ctx;
  // An EventSource reconnects whenever a stream ends, `done` or not, with the last id it saw; 204 is the
  // answer that makes it stop (HTML's EventSource processing model), instead of a loop of empty streams.
  if (ctx.deps.tasks.sentAll(task.id, since)) {
    res.writeHead(204, { 'cache-control': 'no-cache' });
    return void res.end();
  }
  // A stream holds a socket and replay pages for as long as its client keeps it open: it takes a session slot.
  res.once('close', ctx.deps.sessions.take(findSandbox(ctx), 'task_stream'));
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
  res.flushHeaders();
  let ended = false;
  let stop: () => void = () => undefined;
  const heartbeat = setInterval(() => {
    // A backed-up stream needs no heartbeat: it is not idle.
    if (!ended && !res.writableNeedDrain) res.write(': heartbeat\n\n');
  }, ctx.deps.config.tasks.heartbeatS * 1000);
  const end = () => {
    if (ended) return;
    ended = true;
    clearInterval(heartbeat);
    stop();
    res.end();
  };
  res.on('close', end);
  stop = ctx.deps.tasks.follow(task.id, since, {
    send: (e) => (ended ? true : res.write(`id: ${e.seq}\nevent: ${e.type}\ndata: ${JSON.stringify(eventView(e))}\n\n`)),
    drained: () => new Promise<void>((resolve) => {
      if (ended || !res.writableNeedDrain) return resolve();
      const done = () => {
        res.off('drain', done);
        res.off('close', done);
        resolve();
      };
      res.on('drain', done);
      res.on('close', done);
    }),
    close: end,
  });
  if (ended) stop();
}

/** Bytes a WebSocket may have queued before its stream waits for them to be written. */
const WS_HIGH_WATER = 1 << 20;

const tags = ['tasks'];

/** Agent task routes. */
export const taskRoutes: Route[] = [
  {
    method: 'POST', path: '/v1/sandboxes/{id}/tasks', operationId: 'createTask', tags,
    summary: 'Run a coding agent on a prompt in the sandbox (woken if stopped); one task at a time per sandbox',
    body: CreateTask, query: NoQuery, response: { status: 202, schema: TaskCreated, description: 'The task is running; follow events_url.' },
    handler: createTask,
  },
  {
    method: 'GET', path: '/v1/sandboxes/{id}/tasks', operationId: 'listTasks', tags,
    summary: "The sandbox's tasks, newest first",
    query: TaskListQuery, response: { status: 200, schema: TaskList, description: 'A page of tasks.' },
    handler: (ctx: RequestContext<unknown, TaskListQuery>) => {
      const sandbox = findSandbox(ctx);
      const limit = ctx.query.limit ?? 50;
      const rows = ctx.deps.tasks.list(sandbox.id, limit + 1, ctx.query.cursor);
      const page = rows.slice(0, limit);
      return { status: 200, body: { data: page.map(taskView), next_cursor: rows.length > limit ? page.at(-1)!.id : null } };
    },
  },
  {
    method: 'GET', path: '/v1/sandboxes/{id}/tasks/{taskId}', operationId: 'getTask', tags,
    summary: 'One task: status, and once ended its result (final message, files changed, usage, checks)',
    query: NoQuery, response: { status: 200, schema: Task, description: 'The task.' },
    handler: (ctx) => ({ status: 200, body: taskView(findTask(ctx)) }),
  },
  {
    method: 'GET', path: '/v1/sandboxes/{id}/tasks/{taskId}/events', operationId: 'taskEvents', tags,
    summary: 'The task\'s events as Server-Sent Events (replayable with Last-Event-ID or ?since=); ends after `done`, and a request at or past `done` is answered 204 (an EventSource then stops reconnecting). The same path upgrades to a WebSocket of JSON text frames',
    query: EventsQuery,
    response: { status: 200, contentType: 'text/event-stream', schema: TaskEventSchema, description: 'text/event-stream: `status`, `message`, `tool`, `usage`, `build`, `truncated`, `done` events, each with `id:`; the schema is one event\'s `data:`. A task stores at most SANDBOXD_TASK_MAX_EVENTS events: past it one `truncated` event, then only `build`, `status` and `done`.' },
    handler: streamEvents,
  },
  {
    method: 'POST', path: '/v1/sandboxes/{id}/tasks/{taskId}/cancel', operationId: 'cancelTask', tags,
    summary: 'Stop a running task (SIGTERM to the agent, SIGKILL after the grace period); it ends `cancelled`',
    body: NoQuery, bodyOptional: true, query: NoQuery, response: { status: 202, schema: Task, description: 'The task; a running one ends shortly.' },
    handler: (ctx) => {
      const task = findTask(ctx);
      ctx.deps.tasks.cancel(task, actorOf(ctx));
      return { status: 202, body: taskView(ctx.deps.tasks.get(task.id)!) };
    },
  },
];

/** The same event stream over a WebSocket: one JSON text frame per event, closed after `done`. */
export const taskWsRoutes: WsRoute[] = [
  {
    path: '/v1/sandboxes/{id}/tasks/{taskId}/events', operationId: 'taskEventsWs', tags,
    summary: 'The task\'s events over a WebSocket (JSON text frames; ?since= to resume)',
    query: EventsQuery,
    open: (ctx) => {
      const task = findTask(ctx);
      const since = startAfter(ctx);
      // The slot is taken before the handshake (a refusal is a plain 429) and given back when the socket is gone.
      const release = ctx.deps.sessions.take(findSandbox(ctx), 'task_stream');
      if (ctx.req.socket.destroyed) release();
      else ctx.req.socket.once('close', release);
      return (ws: WebSocket) => {
        let stop: () => void = () => undefined;
        let ended = false;
        let written: Promise<void> = Promise.resolve();
        ws.on('close', () => ((ended = true), stop()));
        const close = (code: number, why: string) => {
          ended = true;
          if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close(code, why);
        };
        stop = ctx.deps.tasks.follow(task.id, since, {
          send: (e) => {
            if (ended || ws.readyState !== ws.OPEN) return true;
            // The callback runs once the frame is written to the socket (or failed): what `drained` waits for.
            written = new Promise((resolve) => ws.send(JSON.stringify(eventView(e)), () => resolve()));
            return ws.bufferedAmount < WS_HIGH_WATER;
          },
          drained: () => written,
          close: (why) => (why === 'done' ? close(1000, 'done') : why === 'gone' ? close(1001, 'task deleted') : close(1011, 'internal error')),
        });
        if (ended) stop();
      };
    },
  },
];
