import { Type, type Static } from '@sinclair/typebox';
import { AGENT_NAMES, AGENTS } from '../tasks/agents/index.ts';
import { EnvMap, NoNul } from './schemas.ts';

// The registry is the list: validation and /openapi.json name exactly the agents it holds.
const Agent = Type.Union(AGENT_NAMES.map((name) => Type.Literal(name)), {
  description: `Which coding agent runs the prompt. ${AGENTS.map((a) => `${a.name}: ${a.description}.`).join(' ')}`,
});

export const CreateTask = Type.Object({
  // An argv entry holds at most 128 KiB: 32 Ki characters stay under it in any encoding.
  prompt: Type.String({ minLength: 1, maxLength: 32768, pattern: NoNul, description: 'What the agent should do; it works in ~/workspace/app.' }),
  agent: Agent,
  model: Type.Optional(Type.String({ minLength: 1, maxLength: 200, pattern: '^[A-Za-z0-9][A-Za-z0-9._:/@-]*$', description: 'Model name as the agent takes it (OpenCode: provider/model).' })),
  timeout_s: Type.Optional(Type.Integer({ minimum: 1, description: 'Stop the agent after this long (default SANDBOXD_TASK_TIMEOUT_S, at most SANDBOXD_TASK_MAX_TIMEOUT_S).' })),
  env: Type.Optional(EnvMap('Added to the sandbox env for this task only (e.g. a provider key); never stored or logged.')),
}, { additionalProperties: false });
export type CreateTask = Static<typeof CreateTask>;

export const TaskCreated = Type.Object({
  id: Type.String(),
  status: Type.Literal('running'),
  events_url: Type.String(),
});

const Usage = Type.Object({ input: Type.Integer(), output: Type.Integer(), cache_read: Type.Integer(), cache_write: Type.Integer(), cost: Type.Number({ description: 'US dollars.' }) });

const Outcome = Type.Object({
  status: Type.String(),
  reason: Type.Union([Type.String({ description: 'agent_error | agent_timeout | cancelled | sandbox_unavailable | internal | output_too_large' }), Type.Null()]),
  error: Type.Union([Type.String(), Type.Null()]),
  message: Type.Union([Type.String({ description: "The agent's final message." }), Type.Null()]),
  files_changed: Type.Union([Type.Array(Type.String(), { description: 'At most 1000 paths.' }), Type.Null()]),
  files_changed_truncated: Type.Optional(Type.Literal(true, { description: 'More paths changed than files_changed lists.' })),
  usage: Usage,
  build: Type.Union([Type.Object({ ok: Type.Boolean(), message: Type.Optional(Type.String()) }), Type.Null()]),
  preview: Type.Union([Type.Object({ port: Type.Integer(), status: Type.Union([Type.Integer(), Type.Null()]) }), Type.Null()]),
  checkpoint: Type.Union([Type.String({ description: 'The git commit taken before the agent ran.' }), Type.Null()]),
  duration_ms: Type.Integer(),
});

export const Task = Type.Object({
  id: Type.String(),
  sandbox_id: Type.String(),
  agent: Type.String(),
  model: Type.Union([Type.String(), Type.Null()]),
  prompt: Type.String(),
  timeout_s: Type.Integer(),
  status: Type.String({ description: 'running | succeeded | failed | cancelled' }),
  phase: Type.String({ description: 'checkpoint | agent_running | build_check | health_check' }),
  reason: Type.Union([Type.String(), Type.Null()]),
  error: Type.Union([Type.String(), Type.Null()]),
  result: Type.Union([Outcome, Type.Null()], { description: 'Set once the task has ended.' }),
  created_at: Type.String({ format: 'date-time' }),
  finished_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  events_url: Type.String(),
});
export type Task = Static<typeof Task>;

export const TaskList = Type.Object({
  data: Type.Array(Task),
  next_cursor: Type.Union([Type.String(), Type.Null()]),
});

export const TaskListQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
  cursor: Type.Optional(Type.String({ pattern: '^[0-9A-HJKMNP-TV-Z]{26}$', description: 'next_cursor of the previous page.' })),
}, { additionalProperties: false });
export type TaskListQuery = Static<typeof TaskListQuery>;

export const EventsQuery = Type.Object({
  since: Type.Optional(Type.Integer({ minimum: 0, description: 'Send only events after this sequence number (like Last-Event-ID).' })),
}, { additionalProperties: false });
export type EventsQuery = Static<typeof EventsQuery>;

const EventBase = { seq: Type.Integer({ minimum: 1, description: 'Sequence number within the task (the SSE `id:`).' }), at: Type.String({ format: 'date-time' }) };

/** One event of a task's stream, as SSE `data:` or a WebSocket text frame carries it. */
export const TaskEventSchema = Type.Union([
  Type.Object({ ...EventBase, type: Type.Literal('status'), phase: Type.String({ description: 'checkpoint | agent_running | build_check | health_check' }) }),
  Type.Object({ ...EventBase, type: Type.Literal('message'), role: Type.Literal('assistant'), text: Type.String() }),
  Type.Object({ ...EventBase, type: Type.Literal('tool'), name: Type.String(), status: Type.String({ description: 'started | completed | error' }), path: Type.Optional(Type.String()) }),
  Type.Object({ ...EventBase, type: Type.Literal('usage'), ...Usage.properties }),
  Type.Object({ ...EventBase, type: Type.Literal('build'), ok: Type.Boolean(), message: Type.Optional(Type.String()) }),
  Type.Object({
    ...EventBase, type: Type.Literal('truncated'),
    reason: Type.Union([Type.Literal('line_too_long'), Type.Literal('event_limit'), Type.Literal('byte_limit')], { description: 'line_too_long: one output line passed SANDBOXD_TASK_MAX_LINE_BYTES and was dropped; event_limit / byte_limit: the task reached SANDBOXD_TASK_MAX_EVENTS or SANDBOXD_TASK_MAX_EVENT_BYTES and stores no more message, tool or usage events (sent once; `done` still follows).' }),
    limit: Type.Integer({ description: 'The limit that applied (bytes per line, events per task, or bytes of events per task).' }),
    message: Type.String(),
    line: Type.Optional(Type.Integer({ description: 'line_too_long: the line number in the agent\'s output.' })),
    bytes: Type.Optional(Type.Integer({ description: 'line_too_long: the line\'s length in bytes.' })),
  }),
  Type.Object({ ...EventBase, type: Type.Literal('done'), result: Outcome }),
]);
