import { addUsage, ZERO_USAGE, type TaskEventBody, type Usage } from '../../model/task-events.ts';
import { num, obj, parseLine, pathOf, str, toolEvent, type Json } from './json.ts';
import type { AgentPlugin, Normaliser } from './plugin.ts';

/** The provider Codex is pointed at when the env names an endpoint (its own table in Codex's config). */
const PROVIDER = 'sandboxed';

/** Codex CLI: `codex exec --json`. */
export const codex: AgentPlugin<'codex'> = {
  name: 'codex',
  description: 'Codex CLI (`codex exec --json`); reads OPENAI_API_KEY, and OPENAI_BASE_URL for another OpenAI Responses API endpoint',
  command: (r) => ({
    cmd: [
      'codex', 'exec', '--json', '--color', 'never', '--skip-git-repo-check',
      // The container is the sandbox: Codex's own (Landlock, bubblewrap) cannot start in it, and nobody answers approvals.
      '--dangerously-bypass-approvals-and-sandbox',
      // Nothing resumes a task's session, so none is kept in the workspace.
      '--ephemeral',
      // Without this an unreachable endpoint is waited for until the task times out, instead of failing after the retries.
      '--disable', 'unbounded_connection_retries',
      // Only model calls leave the sandbox: no analytics, no update checks.
      '-c', 'analytics.enabled=false', '-c', 'check_for_update_on_startup=false',
      ...providerFlags(r.env), ...(r.model ? ['--model', r.model] : []), '--', r.prompt,
    ],
    env: apiKeyEnv(r.env),
  }),
  envProblem(env) {
    const url = env.OPENAI_BASE_URL;
    if (url === undefined) return undefined;
    return /^https?:$/.test(URL.parse(url)?.protocol ?? '') ? undefined : 'env.OPENAI_BASE_URL: must be an http:// or https:// URL';
  },
  normaliser: () => new CodexNormaliser(),
};

/**
 * With OPENAI_BASE_URL, a provider of our own at that URL, speaking the Responses API with OPENAI_API_KEY
 * (Codex's built-in OpenAI provider ignores both variables); without it, Codex's defaults.
 */
function providerFlags(env: Record<string, string>): string[] {
  const url = env.OPENAI_BASE_URL;
  if (!url) return [];
  const table = `{name=${tomlString('OPENAI_BASE_URL')},base_url=${tomlString(url)},env_key=${tomlString('OPENAI_API_KEY')},wire_api=${tomlString('responses')}}`;
  return ['-c', `model_provider=${tomlString(PROVIDER)}`, '-c', `model_providers.${PROVIDER}=${table}`];
}

/** Codex's built-in provider takes its key from CODEX_API_KEY in `exec`: OPENAI_API_KEY stands in for it when unset. */
function apiKeyEnv(env: Record<string, string>): Record<string, string> {
  return env.OPENAI_API_KEY && !env.CODEX_API_KEY && !env.OPENAI_BASE_URL ? { ...env, CODEX_API_KEY: env.OPENAI_API_KEY } : env;
}

/** A TOML basic string holding `s`: printable ASCII as is, everything else escaped (a lone surrogate becomes U+FFFD). */
function tomlString(s: string): string {
  let out = '"';
  for (const ch of s.toWellFormed()) {
    const c = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (c >= 0x20 && c < 0x7f) out += ch;
    else out += c > 0xffff ? `\\U${c.toString(16).padStart(8, '0')}` : `\\u${c.toString(16).padStart(4, '0')}`;
  }
  return `${out}"`;
}

/** Tool items of `codex exec --json`, by the name their events carry. */
const TOOL_ITEMS = new Set(['command_execution', 'file_change', 'mcp_tool_call', 'web_search']);

/**
 * Codex's `exec --json` lines: `item.started` / `item.completed` for messages and tools, then one
 * `turn.completed` (with usage) or `turn.failed`. Top-level `error` lines are retries it recovers from;
 * the last one counts only when no turn ended.
 */
class CodexNormaliser implements Normaliser {
  finalMessage: string | null = null;
  usage: Usage = ZERO_USAGE;
  finished = false;
  private failed: string | null = null;
  private lastError: string | null = null;

  get error(): string | null {
    return this.failed ?? (this.finished ? null : this.lastError);
  }

  line(text: string): TaskEventBody[] {
    const j = parseLine(text);
    if (!j) return [];
    switch (j.type) {
      case 'item.started':
        return this.item(obj(j.item), true);
      case 'item.completed':
        return this.item(obj(j.item), false);
      case 'turn.completed': {
        this.finished = true;
        const u = obj(j.usage);
        // OpenAI counts cached input inside input_tokens; the normalised `input` is the uncached part, as Claude reports it.
        const cached = num(u.cached_input_tokens);
        const turn: Usage = { input: Math.max(0, num(u.input_tokens) - cached), output: num(u.output_tokens), cache_read: cached, cache_write: num(u.cache_write_input_tokens), cost: 0 };
        this.usage = addUsage(this.usage, turn);
        return [{ type: 'usage', ...turn }];
      }
      case 'turn.failed':
        this.failed = str(obj(j.error).message)?.trim() || 'the agent reported an error';
        return [];
      case 'error':
        this.lastError = str(j.message)?.trim() || this.lastError;
        return [];
      default:
        return [];
    }
  }

  /** A message, or a tool starting (`started`) or ending; warnings, reasoning and plans make no event. */
  private item(item: Json, started: boolean): TaskEventBody[] {
    const type = str(item.type) ?? '';
    if (type === 'agent_message') {
      const t = str(item.text);
      if (started || !t?.trim()) return [];
      this.finalMessage = t;
      return [{ type: 'message', role: 'assistant', text: t }];
    }
    if (!TOOL_ITEMS.has(type)) return [];
    // A web search carries no status; the others end `completed`, `failed` or `declined`.
    const status = started ? 'started' : item.status === 'failed' || item.status === 'declined' ? 'error' : 'completed';
    const name = type === 'mcp_tool_call' ? (str(item.tool) ?? type) : type;
    if (type === 'file_change' && Array.isArray(item.changes) && item.changes.length > 0) {
      return item.changes.map((c) => toolEvent(name, status, str(obj(c).path)));
    }
    return [toolEvent(name, status, type === 'mcp_tool_call' ? pathOf(obj(item.arguments)) : undefined)];
  }
}
