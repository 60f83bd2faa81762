import type { TaskEvent, TaskEventBody, TaskOutcome, TaskPhase } from '../model/task-events.ts';
import type { TaskRecord, TaskStatus } from '../model/task.ts';
import type { Db } from './db.ts';

/** The tasks and task_events tables. Events are appended with their sequence numbers in one transaction. */
export class TaskStore {
  private db: Db;

  constructor(db: Db) {
    this.db = db;
  }

  /** Inserts a running task; false when the sandbox already has one running (the partial unique index). */
  insert(t: Pick<TaskRecord, 'id' | 'sandboxId' | 'owner' | 'agent' | 'model' | 'prompt' | 'timeoutS' | 'createdAt'>): boolean {
    try {
      this.db.run(`INSERT INTO tasks (id, sandbox_id, owner, agent, model, prompt, timeout_s, status, phase, created_at, started_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, 'running', 'checkpoint', ?, ?)`,
      t.id, t.sandboxId, t.owner, t.agent, t.model, t.prompt, t.timeoutS, t.createdAt, t.createdAt);
      return true;
    } catch (err) {
      if (/UNIQUE constraint failed: tasks\.sandbox_id/.test(String((err as Error).message))) return false;
      throw err;
    }
  }

  get(id: string): TaskRecord | undefined {
    const row = this.db.get<Record<string, unknown>>('SELECT * FROM tasks WHERE id = ?', id);
    return row && fromRow(row);
  }

  /** A sandbox's tasks, newest first (ids are ULIDs, so id order is submit order), from before `cursor` if given. */
  list(sandboxId: string, limit: number, cursor?: string): TaskRecord[] {
    return this.db.all<Record<string, unknown>>('SELECT * FROM tasks WHERE sandbox_id = ? AND id < ? ORDER BY id DESC LIMIT ?', sandboxId, cursor ?? '~', limit).map(fromRow);
  }

  runningIn(sandboxId: string): TaskRecord | undefined {
    const row = this.db.get<Record<string, unknown>>(`SELECT * FROM tasks WHERE sandbox_id = ? AND status = 'running'`, sandboxId);
    return row && fromRow(row);
  }

  /** Every task still marked running (after a restart: the ones to re-attach). */
  /** How many tasks run now, without reading their rows. */
  countRunning(): number {
    return Number(this.db.get<{ n: number }>(`SELECT COUNT(*) AS n FROM tasks WHERE status = 'running'`)?.n ?? 0);
  }

  running(): TaskRecord[] {
    return this.db.all<Record<string, unknown>>(`SELECT * FROM tasks WHERE status = 'running' ORDER BY created_at`).map(fromRow);
  }

  /**
   * Appends events with the next sequence numbers, together with what they move forward (lines read,
   * phase, checkpoint), in one transaction: after a crash the events and the read position agree.
   */
  append(taskId: string, bodies: TaskEventBody[], move: { linesRead?: number; phase?: TaskPhase; checkpoint?: string | null } = {}): TaskEvent[] {
    return this.db.tx(() => {
      const row = this.db.get<{ next_seq: number }>(`SELECT next_seq FROM tasks WHERE id = ? AND status = 'running'`, taskId);
      if (!row) return [];
      const at = Date.now();
      let seq = Number(row.next_seq);
      const events = bodies.map((b) => ({ ...b, seq: seq++, at }) as TaskEvent);
      for (const e of events) {
        const { seq: s, at: when, type, ...data } = e;
        this.db.run('INSERT INTO task_events (task_id, seq, type, data, at) VALUES (?, ?, ?, ?, ?)', taskId, s, type, JSON.stringify(data), when);
      }
      this.db.run(`UPDATE tasks SET next_seq = ?, lines_read = COALESCE(?, lines_read), phase = COALESCE(?, phase),
        checkpoint = CASE WHEN ? THEN ? ELSE checkpoint END WHERE id = ?`,
      seq, move.linesRead ?? null, move.phase ?? null, move.checkpoint !== undefined ? 1 : 0, move.checkpoint ?? null, taskId);
      return events;
    });
  }

  /** Records why the agent is being stopped; the first reason wins. */
  requestStop(taskId: string, reason: 'cancelled' | 'agent_timeout'): void {
    this.db.run(`UPDATE tasks SET cancel_reason = COALESCE(cancel_reason, ?) WHERE id = ? AND status = 'running'`, reason, taskId);
  }

  /** Ends a running task with its outcome and appends the `done` event; answers that event, or undefined if it had ended already. */
  finish(taskId: string, outcome: TaskOutcome): TaskEvent | undefined {
    return this.db.tx(() => {
      const [done] = this.append(taskId, [{ type: 'done', result: outcome }]);
      if (!done) return undefined;
      this.db.run('UPDATE tasks SET status = ?, reason = ?, error = ?, result = ?, finished_at = ? WHERE id = ?',
        outcome.status, outcome.reason, outcome.error, JSON.stringify(outcome), done.at, taskId);
      return done;
    });
  }

  /** Bytes of event data a task has stored (a re-attach carries on counting towards the cap from here). */
  eventBytes(taskId: string): number {
    return Number(this.db.get<{ n: number | null }>('SELECT SUM(octet_length(data)) AS n FROM task_events WHERE task_id = ?', taskId)?.n ?? 0);
  }

  /** The task's last event of one type, if any (a re-attach reads back the build check's result). */
  lastOfType(taskId: string, type: TaskEvent['type']): TaskEvent | undefined {
    const r = this.db.get<EventRow>('SELECT seq, type, data, at FROM task_events WHERE task_id = ? AND type = ? ORDER BY seq DESC LIMIT 1', taskId, type);
    return r && fromEventRow(r);
  }

  /**
   * Events after `since`, in order: at most `limit`, and once `maxBytes` of data have been read no more
   * (replays read a page at a time, and one event can be a megabyte). Rows are stepped one at a time, so
   * a page stops where its bytes run out without reading the rows after it.
   */
  eventsAfter(taskId: string, since: number, limit = 1000, maxBytes = Infinity): TaskEvent[] {
    const sql = 'SELECT seq, type, data, at FROM task_events WHERE task_id = ? AND seq > ? ORDER BY seq LIMIT ?';
    if (!Number.isFinite(maxBytes)) return this.db.all<EventRow>(sql, taskId, since, limit).map(fromEventRow);
    const page: TaskEvent[] = [];
    let bytes = 0;
    for (const r of this.db.raw.prepare(sql).iterate(taskId, since, limit) as Iterable<EventRow>) {
      page.push(fromEventRow(r));
      bytes += r.data.length;
      if (bytes >= maxBytes) break;
    }
    return page;
  }
}

type EventRow = { seq: number; type: string; data: string; at: number };

function fromEventRow(r: EventRow): TaskEvent {
  return { ...(JSON.parse(r.data) as object), type: r.type, seq: Number(r.seq), at: Number(r.at) } as TaskEvent;
}

function fromRow(r: Record<string, unknown>): TaskRecord {
  const n = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  return {
    id: String(r.id), sandboxId: String(r.sandbox_id), owner: String(r.owner), agent: String(r.agent),
    model: r.model === null ? null : String(r.model), prompt: String(r.prompt), timeoutS: Number(r.timeout_s),
    status: r.status as TaskStatus, phase: r.phase as TaskPhase, reason: (r.reason ?? null) as TaskOutcome['reason'],
    error: r.error === null ? null : String(r.error), result: r.result === null ? null : (JSON.parse(String(r.result)) as TaskOutcome),
    checkpoint: r.checkpoint === null ? null : String(r.checkpoint), linesRead: Number(r.lines_read), events: Number(r.next_seq) - 1,
    cancelReason: (r.cancel_reason ?? null) as TaskRecord['cancelReason'],
    createdAt: Number(r.created_at), startedAt: n(r.started_at), finishedAt: n(r.finished_at),
  };
}
