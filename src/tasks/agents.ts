import type { AgentName } from './normalise.ts';

/** What a task asks an agent to do. */
export interface AgentRequest {
  agent: AgentName;
  prompt: string;
  model: string | null;
  taskId: string;
  /** The sandbox env with the task's env over it. */
  env: Record<string, string>;
}

/** Permissions OpenCode needs to act headless: without a policy `run` rejects every tool call and still exits 0. */
const OPENCODE_DEFAULTS = { permission: { '*': 'allow', external_directory: 'allow' }, autoupdate: false, share: 'disabled' };

/**
 * The argv and extra env that run an agent headless with JSON-lines output. The prompt comes after `--`
 * so that a prompt starting with a dash is never read as an option.
 */
export function agentCommand(r: AgentRequest): { cmd: string[]; env: Record<string, string> } {
  if (r.agent === 'claude') {
    return {
      cmd: ['claude', '-p', '--output-format', 'stream-json', '--verbose', '--dangerously-skip-permissions', ...(r.model ? ['--model', r.model] : []), '--', r.prompt],
      // Only model calls leave the sandbox: no telemetry, no update checks.
      env: { CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1', ...r.env },
    };
  }
  return {
    cmd: ['opencode', 'run', '--format', 'json', '--title', `task ${r.taskId}`, ...(r.model ? ['--model', r.model] : []), '--', r.prompt],
    env: { ...r.env, OPENCODE_CONFIG_CONTENT: opencodeConfig(r.env.OPENCODE_CONFIG_CONTENT) },
  };
}

/** The caller's inline OpenCode config (if any) with our defaults under it: the caller's keys win. */
function opencodeConfig(given: string | undefined): string {
  const user = given ? (JSON.parse(given) as Record<string, unknown>) : {};
  return JSON.stringify({ ...OPENCODE_DEFAULTS, ...user });
}

/** Checks a task env before anything runs; answers the problem, naming the field, or undefined. */
export function envProblem(agent: AgentName, env: Record<string, string>): string | undefined {
  const inline = env.OPENCODE_CONFIG_CONTENT;
  if (agent !== 'opencode' || inline === undefined) return undefined;
  try {
    const v: unknown = JSON.parse(inline);
    if (!v || typeof v !== 'object' || Array.isArray(v)) return 'env.OPENCODE_CONFIG_CONTENT: must be a JSON object';
  } catch {
    return 'env.OPENCODE_CONFIG_CONTENT: not valid JSON';
  }
  return undefined;
}
