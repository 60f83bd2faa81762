import { Type } from '@sinclair/typebox';
import { findSandbox } from './lookup.ts';
import type { Route } from './route.ts';
import { NoQuery } from './schemas.ts';
import { iso } from './view.ts';

const ActivityView = Type.Object({
  id: Type.String(),
  status: Type.String(),
  idle_policy: Type.String(),
  idle_timeout_s: Type.Integer(),
  last_active_at: Type.String({ format: 'date-time' }),
  last_activity: Type.Record(Type.String(), Type.String({ format: 'date-time' }), { description: 'Per source: gateway, exec, terminal, task, keepalive.' }),
  leases: Type.Array(Type.Object({ kind: Type.String(), opened_at: Type.String({ format: 'date-time' }) })),
  keepalive_until: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  idle_deadline: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  will_stop_when_idle: Type.Boolean(),
  explanation: Type.String(),
  last_stop_reason: Type.Union([Type.String(), Type.Null()]),
});

/** Why a sandbox is awake, and when it will sleep. */
export const activityRoutes: Route[] = [
  {
    method: 'GET', path: '/v1/sandboxes/{id}/activity', operationId: 'sandboxActivity', tags: ['sandboxes'],
    summary: 'Why the sandbox is awake: last activity per source, open leases, the next idle deadline',
    query: NoQuery, response: { status: 200, schema: ActivityView, description: 'Activity.' },
    handler: (ctx) => {
      const rec = findSandbox(ctx);
      const { leases, lastBySource, verdict } = ctx.deps.activity.explain(rec);
      return {
        status: 200,
        body: {
          id: rec.id, status: rec.status, idle_policy: rec.idlePolicy, idle_timeout_s: rec.idleTimeoutS,
          last_active_at: iso(rec.lastActiveAt)!,
          last_activity: Object.fromEntries(Object.entries(lastBySource).map(([k, v]) => [k, iso(v)!])),
          leases: leases.map((l) => ({ kind: l.kind, opened_at: iso(l.openedAt)! })),
          keepalive_until: iso(rec.keepaliveUntil),
          idle_deadline: iso(verdict.deadline),
          will_stop_when_idle: verdict.deadline !== null,
          explanation: verdict.stopNow ? `due to stop: ${verdict.why}` : verdict.why,
          last_stop_reason: rec.lastStopReason,
        },
      };
    },
  },
];
