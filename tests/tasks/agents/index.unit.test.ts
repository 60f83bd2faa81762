import { describe, expect, it } from 'vitest';
import { CreateTask } from '../../../src/api/task-schemas.ts';
import { validate } from '../../../src/api/validate.ts';
import { AGENT_NAMES, AGENTS, agentFor } from '../../../src/tasks/agents/index.ts';

describe('the agent registry', () => {
  it('holds OpenCode, Claude Code and Codex, each found by its name', () => {
    expect(AGENT_NAMES).toEqual(['opencode', 'claude', 'codex']);
    for (const name of AGENT_NAMES) expect(agentFor(name).name).toBe(name);
  });

  it('is the API\'s agent enum: the schema lists exactly the registered names with their descriptions, and validation takes them and nothing else', () => {
    const agent = CreateTask.properties.agent;
    expect(agent.anyOf.map((s) => s.const)).toEqual(AGENT_NAMES);
    for (const a of AGENTS) expect(agent.description).toContain(`${a.name}: ${a.description}.`);
    for (const name of AGENT_NAMES) expect(validate(CreateTask, { prompt: 'x', agent: name }, 'body')).toMatchObject({ agent: name });
    expect(() => validate(CreateTask, { prompt: 'x', agent: 'aider' }, 'body')).toThrow(/body\.agent/);
  });

  it('refuses to look up a name it does not hold (a task stored by a build with another agent)', () => {
    expect(() => agentFor('aider' as never)).toThrow(/no agent named 'aider'.*opencode, claude, codex/);
  });
});
