import { addUsage, ZERO_USAGE, type TaskEventBody, type Usage } from './events.ts';

export type AgentName = 'opencode' | 'claude';

/**
 * Turns an agent's JSON output, one line at a time, into normalised events, and remembers what the end
 * of the run needs: the final message, the usage total and the error the agent reported, if any.
 */
export interface Normaliser {
  line(text: string): TaskEventBody[];
  readonly finalMessage: string | null;
  readonly usage: Usage;
  /** The provider's or agent's own error message, when the run failed. */
  readonly error: string | null;
  /** Whether the output says the run finished (Claude Code's `result` line); OpenCode has no such line. */
  readonly finished: boolean;
}

/** A normaliser for one run of an agent. */
export function normaliserFor(agent: AgentName): Normaliser {
  return agent === 'claude' ? new ClaudeNormaliser() : new OpenCodeNormaliser();
}

type Json = Record<string, unknown>;

function parse(text: string): Json | undefined {
  if (!text.trim().startsWith('{')) return undefined;
  try {
    const v: unknown = JSON.parse(text);
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined;
  } catch {
    return undefined;
  }
}

const obj = (v: unknown): Json => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {});
const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** The file a tool call is about, whatever the agent names the argument. */
function pathOf(input: Json): string | undefined {
  return str(input.file_path) ?? str(input.filePath) ?? str(input.path) ?? str(input.notebook_path);
}

function toolEvent(name: string, status: 'started' | 'completed' | 'error', path: string | undefined): TaskEventBody {
  return { type: 'tool', name, status, ...(path ? { path } : {}) };
}

/** Claude Code's `--output-format stream-json --verbose` lines. */
class ClaudeNormaliser implements Normaliser {
  finalMessage: string | null = null;
  usage: Usage = ZERO_USAGE;
  error: string | null = null;
  finished = false;
  private tools = new Map<string, { name: string; path: string | undefined }>();

  line(text: string): TaskEventBody[] {
    const j = parse(text);
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

/** OpenCode's `run --format json` lines. */
class OpenCodeNormaliser implements Normaliser {
  finalMessage: string | null = null;
  usage: Usage = ZERO_USAGE;
  error: string | null = null;
  readonly finished = true;

  line(text: string): TaskEventBody[] {
    const j = parse(text);
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
