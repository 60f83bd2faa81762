import { addUsage, ZERO_USAGE, type TaskEventBody, type Usage } from '../../model/task-events.ts';
import { num, obj, parseLine, pathOf, str, toolEvent } from './json.ts';
import type { AgentPlugin, Normaliser } from './plugin.ts';

/** Permissions OpenCode needs to act headless: without a policy `run` rejects every tool call and still exits 0. */
const OPENCODE_DEFAULTS = { permission: { '*': 'allow', external_directory: 'allow' }, autoupdate: false, share: 'disabled' };

/** OpenCode: `opencode run --format json`. */
export const opencode: AgentPlugin<'opencode'> = {
  name: 'opencode',
  description: 'OpenCode (`opencode run --format json`); reads provider settings from OPENCODE_CONFIG_CONTENT (a JSON object) and the providers\' own key variables',
  command: (r) => ({
    cmd: ['opencode', 'run', '--format', 'json', '--title', `task ${r.taskId}`, ...(r.model ? ['--model', r.model] : []), '--', r.prompt],
    env: { ...r.env, OPENCODE_CONFIG_CONTENT: opencodeConfig(r.env.OPENCODE_CONFIG_CONTENT) },
  }),
  envProblem(env) {
    const inline = env.OPENCODE_CONFIG_CONTENT;
    if (inline === undefined) return undefined;
    try {
      const v: unknown = JSON.parse(inline);
      if (!v || typeof v !== 'object' || Array.isArray(v)) return 'env.OPENCODE_CONFIG_CONTENT: must be a JSON object';
    } catch {
      return 'env.OPENCODE_CONFIG_CONTENT: not valid JSON';
    }
    return undefined;
  },
  normaliser: () => new OpenCodeNormaliser(),
};

/** The caller's inline OpenCode config (if any) with our defaults under it: the caller's keys win. */
function opencodeConfig(given: string | undefined): string {
  const user = given ? (JSON.parse(given) as Record<string, unknown>) : {};
  return JSON.stringify({ ...OPENCODE_DEFAULTS, ...user });
}

/** OpenCode's `run --format json` lines; it prints no result line, so a run is finished when it exits. */
class OpenCodeNormaliser implements Normaliser {
  finalMessage: string | null = null;
  usage: Usage = ZERO_USAGE;
  error: string | null = null;
  readonly finished = true;

  line(text: string): TaskEventBody[] {
    const j = parseLine(text);
    if (!j) return [];
    const part = obj(j.part);
    switch (j.type) {
      case 'text': {
        const t = str(part.text);
        if (!t?.trim()) return [];
        this.finalMessage = t;
        return [{ type: 'message', role: 'assistant', text: t }];
      }
      case 'tool_use': {
        const state = obj(part.state);
        const status = state.status === 'error' ? 'error' : state.status === 'completed' ? 'completed' : 'started';
        return [toolEvent(str(part.tool) ?? 'unknown', status, pathOf(obj(state.input)))];
      }
      case 'step_finish': {
        const tokens = obj(part.tokens);
        const cache = obj(tokens.cache);
        const turn: Usage = { input: num(tokens.input), output: num(tokens.output), cache_read: num(cache.read), cache_write: num(cache.write), cost: num(part.cost) };
        this.usage = addUsage(this.usage, turn);
        return [{ type: 'usage', ...turn }];
      }
      case 'error': {
        const e = obj(j.error);
        this.error = str(obj(e.data).message) ?? str(e.message) ?? str(e.name) ?? 'the agent reported an error';
        return [];
      }
      default:
        return [];
    }
  }
}
