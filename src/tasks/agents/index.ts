import { AppError } from '../../errors.ts';
import { claude } from './claude.ts';
import { codex } from './codex.ts';
import { opencode } from './opencode.ts';
import type { AgentPlugin } from './plugin.ts';

export type { AgentCommand, AgentPlugin, AgentRequest, Normaliser } from './plugin.ts';

/** Every agent a task can run, in the order the API and the docs list them. Adding one is adding it here. */
export const AGENTS = [opencode, claude, codex] as const;

/** The name of a registered agent: a task's `agent`. */
export type AgentName = (typeof AGENTS)[number]['name'];

/** The registered agents' names. */
export const AGENT_NAMES: AgentName[] = AGENTS.map((a) => a.name);

/** The agent registered as `name` (a stored task may name one this build no longer has: `internal`). */
export function agentFor(name: string): AgentPlugin<AgentName> {
  const agent = AGENTS.find((a) => a.name === name);
  if (!agent) throw new AppError('internal', `no agent named '${name}' in this build (known: ${AGENT_NAMES.join(', ')})`);
  return agent;
}
