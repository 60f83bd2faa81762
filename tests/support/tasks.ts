import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { ROOT, type Daemon } from './daemon.ts';

/** The full sandbox image (Node, git, the agent CLIs), built by `npm run image:sandbox`. */
export const SANDBOX_IMAGE = 'sandboxed/sandbox:latest';

/** Daemon settings for agent tasks: the real image, memory for two CLIs, short waits. */
export const TASK_DAEMON_ENV = {
  SANDBOXD_IMAGE: SANDBOX_IMAGE,
  SANDBOXD_DEFAULT_MEMORY_MB: '1536',
  SANDBOXD_TASK_HEALTH_WAIT_S: '5',
  SANDBOXD_TASK_CANCEL_GRACE_S: '3',
  SANDBOXD_SSE_HEARTBEAT_S: '1',
};

const FAKE_MODEL = readFileSync(join(ROOT, 'tests/support/fake-model.mjs'), 'utf8');

/** Starts the scripted model server inside the sandbox on 127.0.0.1:port and waits until it answers. */
export async function startFakeModel(d: Daemon, sandboxId: string, port: number, mode: 'ok' | '401' | '500' | 'hang', finalDelayMs = 0): Promise<void> {
  const write = await d.api('POST', `/v1/sandboxes/${sandboxId}/exec`, { cmd: ['sh', '-c', 'mkdir -p ~/.fake && cat > ~/.fake/model.mjs'], stdin: FAKE_MODEL });
  expect(write.body.exit_code).toBe(0);
  const start = await d.api('POST', `/v1/sandboxes/${sandboxId}/exec`, { cmd: ['node', '/home/sandbox/.fake/model.mjs', String(port), mode, String(finalDelayMs)], detach: true });
  expect(start.status).toBe(202);
  const ready = await d.api('POST', `/v1/sandboxes/${sandboxId}/exec`, {
    cmd: ['sh', '-c', 'for i in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$0/" && exit 0; sleep 0.1; done; exit 1', String(port)],
  });
  expect(ready.body.exit_code).toBe(0);
}

/** Task env pointing Claude Code at the fake server, failing fast. */
export function claudeEnv(port: number): Record<string, string> {
  return { ANTHROPIC_BASE_URL: `http://127.0.0.1:${port}`, CLAUDE_CODE_MAX_RETRIES: '0' };
}

/** Task env pointing Codex at the fake server's Responses API (the key comes from the sandbox env). */
export function codexEnv(port: number): Record<string, string> {
  return { OPENAI_BASE_URL: `http://127.0.0.1:${port}/v1` };
}

/** Task env pointing OpenCode at the fake server as an OpenAI-compatible provider, offline-safe. */
export function opencodeEnv(port: number): Record<string, string> {
  return {
    OPENCODE_CONFIG_CONTENT: JSON.stringify({
      provider: { fake: { npm: '@ai-sdk/openai-compatible', options: { baseURL: `http://127.0.0.1:${port}/v1`, apiKey: 'x' }, models: { m: { tool_call: true } } } },
      model: 'fake/m',
    }),
    OPENCODE_DISABLE_MODELS_FETCH: '1',
    OPENCODE_DISABLE_LSP_DOWNLOAD: '1',
    OPENCODE_DISABLE_DEFAULT_PLUGINS: '1',
    OPENCODE_DISABLE_CLAUDE_CODE: '1',
  };
}

export interface SseEvent {
  id: number;
  event: string;
  data: any;
}

/**
 * Reads a task's SSE stream until it ends or `max` events have arrived (then hangs up). Answers the
 * events and the raw text (for checking heartbeats and framing). `slow` waits before the first read and
 * after every chunk, so the daemon meets back-pressure; `onEvent` sees each event as it arrives.
 */
export async function readEvents(d: Daemon, path: string, opts: { max?: number; headers?: Record<string, string>; timeoutMs?: number; onEvent?: (e: SseEvent) => void; slow?: boolean } = {}): Promise<{ events: SseEvent[]; status: number; contentType: string | null }> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), opts.timeoutMs ?? 120_000);
  const r = await fetch(`${d.url}${path}`, { headers: opts.headers ?? {}, signal: ac.signal });
  const events: SseEvent[] = [];
  if (!r.ok || !r.body) {
    clearTimeout(timer);
    return { events, status: r.status, contentType: r.headers.get('content-type') };
  }
  const reader = r.body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  try {
    if (opts.slow) await new Promise((res) => setTimeout(res, 2000));
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      if (opts.slow) await new Promise((res) => setTimeout(res, 5));
      let cut;
      while ((cut = buf.indexOf('\n\n')) >= 0) {
        const frame = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        const fields = Object.fromEntries(frame.split('\n').filter((l) => !l.startsWith(':')).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)]));
        if (fields.data === undefined) continue;
        const e = { id: Number(fields.id), event: fields.event!, data: JSON.parse(fields.data) };
        events.push(e);
        opts.onEvent?.(e);
        if (opts.max !== undefined && events.length >= opts.max) {
          ac.abort();
          return { events, status: r.status, contentType: r.headers.get('content-type') };
        }
      }
    }
  } catch (err) {
    if (!ac.signal.aborted) throw err;
  } finally {
    clearTimeout(timer);
  }
  return { events, status: r.status, contentType: r.headers.get('content-type') };
}

/** Waits until the task has ended and answers it. */
export async function waitForTask(d: Daemon, sandboxId: string, taskId: string, ms = 120_000): Promise<any> {
  const deadline = Date.now() + ms;
  for (;;) {
    const r = await d.api('GET', `/v1/sandboxes/${sandboxId}/tasks/${taskId}`);
    if (r.status !== 200) throw new Error(`GET task answered ${r.status}: ${r.text}`);
    if (r.body.status !== 'running') return r.body;
    if (Date.now() > deadline) throw new Error(`task ${taskId} still running after ${ms} ms: ${r.text}`);
    await new Promise((res) => setTimeout(res, 200));
  }
}

/** The agent processes left in a sandbox (ps as the sandbox user sees them). */
export async function agentProcesses(d: Daemon, sandboxId: string): Promise<string> {
  const r = await d.api('POST', `/v1/sandboxes/${sandboxId}/exec`, { cmd: ['sh', '-c', 'ps -eo pid,args | grep -E "[c]laude|[o]pencode|[c]odex" || true'] });
  return String(r.body.stdout).trim();
}

/**
 * A sandbox whose `claude` is the given script (on ~/bin, first on its PATH): a stand-in agent that prints
 * whatever a test needs, hostile output included. Answers the sandbox id.
 */
export async function sandboxWithStandIn(d: Daemon, script: string): Promise<string> {
  const r = await d.api('POST', '/v1/sandboxes', { env: { PATH: '/home/sandbox/bin:/usr/local/bin:/usr/bin:/bin' } });
  if (r.status !== 201) throw new Error(`create answered ${r.status}: ${r.text}`);
  const put = await d.api('POST', `/v1/sandboxes/${r.body.id}/exec`, { cmd: ['sh', '-c', 'mkdir -p ~/bin && cat > ~/bin/claude && chmod +x ~/bin/claude'], stdin: script });
  if (put.body.exit_code !== 0) throw new Error(`installing the stand-in agent failed: ${put.text}`);
  return r.body.id;
}
