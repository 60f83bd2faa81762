import { Type, type Static } from '@sinclair/typebox';
import { EnvMap, NoNul } from './schemas.ts';

const Agent = Type.Union([Type.Literal('opencode'), Type.Literal('claude')], { description: 'Which coding agent runs the prompt.' });

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
  reason: Type.Union([Type.String({ description: 'agent_error | agent_timeout | cancelled | sandbox_unavailable | internal' }), Type.Null()]),
  error: Type.Union([Type.String(), Type.Null()]),
  message: Type.Union([Type.String({ description: "The agent's final message." }), Type.Null()]),
  files_changed: Type.Union([Type.Array(Type.String()), Type.Null()]),
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
