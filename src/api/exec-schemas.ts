import { Type, type Static } from '@sinclair/typebox';
import { EnvMap, NoNul } from './schemas.ts';

const ExecFields = {
  cmd: Type.Array(Type.String({ maxLength: 131072, pattern: NoNul }), { minItems: 1, maxItems: 4096, description: 'argv, e.g. ["bash","-lc","npm run build"].' }),
  env: Type.Optional(EnvMap('Added to the sandbox env for this command.')),
  cwd: Type.Optional(Type.String({ minLength: 1, maxLength: 4096, pattern: NoNul, description: 'Relative to ~/workspace/app, or ~/..., or absolute. Default ~/workspace/app.' })),
  timeout_s: Type.Optional(Type.Integer({ minimum: 1, maximum: 3600, description: 'Kill the whole process tree after this long.' })),
  stdin: Type.Optional(Type.String({ maxLength: 1 << 20, description: 'Written to the command, then end-of-file.' })),
};

export const ExecRequest = Type.Object({
  ...ExecFields,
  detach: Type.Optional(Type.Boolean({ description: 'Start in the background and answer at once with its process id.' })),
}, { additionalProperties: false });
export type ExecRequest = Static<typeof ExecRequest>;

/** The first text frame of /exec/ws: the same request, streamed. */
export const ExecWsRequest = Type.Object(ExecFields, { additionalProperties: false });
export type ExecWsRequest = Static<typeof ExecWsRequest>;

export const ExecResponse = Type.Object({
  stdout: Type.String(),
  stderr: Type.String(),
  encoding: Type.Optional(Type.Literal('base64', { description: 'Set when stdout/stderr are base64 (the bytes were not UTF-8).' })),
  exit_code: Type.Integer(),
  duration_ms: Type.Integer(),
  timed_out: Type.Boolean(),
  truncated: Type.Boolean({ description: 'Output beyond the per-stream cap was dropped.' }),
  wake: Type.Optional(Type.Boolean({ description: 'The sandbox was stopped and was started for this command.' })),
});

export const TerminalQuery = Type.Object({
  cols: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 80 })),
  rows: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 24 })),
}, { additionalProperties: false });
export type TerminalQuery = Static<typeof TerminalQuery>;

/** Control frames a client sends as JSON text over /exec/ws and /terminal. */
export const ClientFrame = Type.Union([
  Type.Object({ type: Type.Literal('stdin'), data: Type.String({ maxLength: 1 << 20 }), encoding: Type.Optional(Type.Literal('base64')) }, { additionalProperties: false }),
  Type.Object({ type: Type.Literal('stdin_end') }, { additionalProperties: false }),
  Type.Object({ type: Type.Literal('resize'), cols: Type.Integer({ minimum: 1, maximum: 1000 }), rows: Type.Integer({ minimum: 1, maximum: 1000 }) }, { additionalProperties: false }),
  Type.Object({ type: Type.Literal('signal'), signal: Type.Union((['TERM', 'KILL', 'INT', 'HUP', 'QUIT', 'USR1', 'USR2'] as const).map((s) => Type.Literal(s))) }, { additionalProperties: false }),
]);
export type ClientFrame = Static<typeof ClientFrame>;
