import { addUsage, ZERO_USAGE, type TaskEventBody, type Usage } from '../../model/task-events.ts';
import { num, obj, parseLine, pathOf, str, toolEvent } from './json.ts';
import type { AgentPlugin, Normaliser } from './plugin.ts';

/** Claude Code: `claude -p --output-format stream-json`. */
export const claude: AgentPlugin<'claude'> = {
  name: 'claude',
  description: 'Claude Code (`claude -p --output-format stream-json`); reads ANTHROPIC_API_KEY, and ANTHROPIC_BASE_URL for another endpoint',
  command: (r) => ({
    cmd: ['claude', '-p', '--output-format', 'stream-json', '--verbose', '--dangerously-skip-permissions', ...(r.model ? ['--model', r.model] : []), '--', r.prompt],
    // Only model calls leave the sandbox: no telemetry, no update checks.
    env: { CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1', ...r.env },
  }),
  envProblem: () => undefined,
  normaliser: () => new ClaudeNormaliser(),
};

/** Claude Code's `--output-format stream-json --verbose` lines. */
class ClaudeNormaliser implements Normaliser {
  finalMessage: string | null = null;
  usage: Usage = ZERO_USAGE;
  error: string | null = null;
  finished = false;
  private tools = new Map<string, { name: string; path: string | undefined }>();

  line(text: string): TaskEventBody[] {
    const j = parseLine(text);
    if (!j) return [];
    const content = Array.isArray(obj(j.message).content) ? (obj(j.message).content as unknown[]) : [];
    switch (j.type) {
      case 'assistant': {
        const out: TaskEventBody[] = [];
        for (const block of content.map(obj)) {
          if (block.type === 'text' && str(block.text)?.trim()) {
            this.finalMessage = str(block.text)!;
            out.push({ type: 'message', role: 'assistant', text: this.finalMessage });
          } else if (block.type === 'tool_use') {
            const name = str(block.name) ?? 'unknown';
            const path = pathOf(obj(block.input));
            if (str(block.id)) this.tools.set(str(block.id)!, { name, path });
            out.push(toolEvent(name, 'started', path));
          }
        }
        return out;
      }
      case 'user':
        return content.map(obj).filter((b) => b.type === 'tool_result').map((b) => {
          const tool = this.tools.get(str(b.tool_use_id) ?? '');
          return toolEvent(tool?.name ?? 'unknown', b.is_error === true ? 'error' : 'completed', tool?.path);
        });
      case 'result': {
        this.finished = true;
        const u = obj(j.usage);
        const turn: Usage = {
          input: num(u.input_tokens), output: num(u.output_tokens), cache_read: num(u.cache_read_input_tokens),
          cache_write: num(u.cache_creation_input_tokens), cost: num(j.total_cost_usd),
        };
        this.usage = addUsage(this.usage, turn);
        const result = str(j.result);
        if (j.is_error === true || (str(j.subtype) && j.subtype !== 'success')) {
          this.error = result?.trim() || `the agent stopped: ${str(j.subtype) ?? 'error'}`;
        } else if (result?.trim()) {
          this.finalMessage = result;
        }
        return [{ type: 'usage', ...turn }];
      }
      default:
        return [];
    }
  }
}
