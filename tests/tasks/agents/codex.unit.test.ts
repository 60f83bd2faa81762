import { describe, expect, it } from 'vitest';
import { codex } from '../../../src/tasks/agents/codex.ts';
import type { TaskEventBody } from '../../../src/model/task-events.ts';

/** `codex exec --json` output recorded from Codex CLI 0.171.0 against tests/support/fake-model.mjs. */
const PATCH_RUN = [
  '{"type":"thread.started","thread_id":"01a23241-a649-7cb2-a97f-12b4e7e30e21"}',
  '{"type":"turn.started"}',
  '{"type":"item.completed","item":{"id":"item_0","type":"agent_message","text":"I will write the file."}}',
  '{"type":"item.started","item":{"id":"item_1","type":"file_change","changes":[{"path":"/home/sandbox/workspace/app/hello.txt","kind":"add"}],"status":"in_progress"}}',
  '{"type":"item.completed","item":{"id":"item_1","type":"file_change","changes":[{"path":"/home/sandbox/workspace/app/hello.txt","kind":"add"}],"status":"completed"}}',
  '{"type":"item.completed","item":{"id":"item_2","type":"agent_message","text":"Done: I wrote hello.txt."}}',
  '{"type":"turn.completed","usage":{"input_tokens":200,"cached_input_tokens":14,"cache_write_input_tokens":0,"output_tokens":40,"reasoning_output_tokens":0}}',
];

/** The same, for a model Codex has no metadata for: a warning item, and its shell instead of apply_patch. */
const SHELL_RUN = [
  '{"type":"thread.started","thread_id":"01a23241-a947-7cb1-9d62-6a76971a7e57"}',
  '{"type":"item.completed","item":{"id":"item_0","type":"error","message":"Model metadata for `m` not found. Defaulting to fallback metadata; this can degrade performance and cause issues."}}',
  '{"type":"turn.started"}',
  '{"type":"item.completed","item":{"id":"item_1","type":"agent_message","text":"I will write the file."}}',
  '{"type":"item.started","item":{"id":"item_2","type":"command_execution","command":"/bin/bash -lc \\"printf \'%s\\\\\\\\n\' \'hello from the agent\' > /home/sandbox/workspace/app/hello.txt\\"","aggregated_output":"","exit_code":null,"status":"in_progress"}}',
  '{"type":"item.completed","item":{"id":"item_2","type":"command_execution","command":"/bin/bash -lc \\"printf \'%s\\\\\\\\n\' \'hello from the agent\' > /home/sandbox/workspace/app/hello.txt\\"","aggregated_output":"","exit_code":0,"status":"completed"}}',
  '{"type":"item.completed","item":{"id":"item_3","type":"agent_message","text":"Done: I wrote hello.txt."}}',
  '{"type":"turn.completed","usage":{"input_tokens":200,"cached_input_tokens":14,"cache_write_input_tokens":0,"output_tokens":40,"reasoning_output_tokens":0}}',
];

/** The provider answering 500 to every request: retries, then a failed turn. */
const FAILED_RUN = [
  '{"type":"thread.started","thread_id":"01a23241-e348-77d1-9cc5-cec1c9b79068"}',
  '{"type":"turn.started"}',
  '{"type":"error","message":"Reconnecting... 1/5 (We’re currently experiencing high demand, which may cause temporary errors.)"}',
  '{"type":"error","message":"Reconnecting... 2/5 (We’re currently experiencing high demand, which may cause temporary errors.)"}',
  '{"type":"error","message":"Reconnecting... 3/5 (We’re currently experiencing high demand, which may cause temporary errors.)"}',
  '{"type":"error","message":"Reconnecting... 4/5 (We’re currently experiencing high demand, which may cause temporary errors.)"}',
  '{"type":"error","message":"Reconnecting... 5/5 (We’re currently experiencing high demand, which may cause temporary errors.)"}',
  '{"type":"error","message":"We’re currently experiencing high demand, which may cause temporary errors."}',
  '{"type":"turn.failed","error":{"message":"We’re currently experiencing high demand, which may cause temporary errors."}}',
];

const FILE = '/home/sandbox/workspace/app/hello.txt';

function run(lines: string[]) {
  const n = codex.normaliser();
  const events: TaskEventBody[] = lines.flatMap((l) => n.line(l));
  return { n, events };
}

describe('the Codex normaliser', () => {
  it('turns a run that patches a file into message, file_change started/completed with the path, the final message and usage', () => {
    const { n, events } = run(PATCH_RUN);
    expect(events).toEqual([
      { type: 'message', role: 'assistant', text: 'I will write the file.' },
      { type: 'tool', name: 'file_change', status: 'started', path: FILE },
      { type: 'tool', name: 'file_change', status: 'completed', path: FILE },
      { type: 'message', role: 'assistant', text: 'Done: I wrote hello.txt.' },
      // OpenAI counts the 14 cached tokens inside input_tokens (200): the normalised input is the rest.
      { type: 'usage', input: 186, output: 40, cache_read: 14, cache_write: 0, cost: 0 },
    ]);
    expect(n.finalMessage).toBe('Done: I wrote hello.txt.');
    expect(n.usage).toEqual({ input: 186, output: 40, cache_read: 14, cache_write: 0, cost: 0 });
    expect(n.finished).toBe(true);
    expect(n.error).toBeNull();
  });

  it('reports a shell command as command_execution without a path, and makes no event of a warning item', () => {
    const { n, events } = run(SHELL_RUN);
    expect(events.filter((e) => e.type === 'tool')).toEqual([
      { type: 'tool', name: 'command_execution', status: 'started' },
      { type: 'tool', name: 'command_execution', status: 'completed' },
    ]);
    expect(events.map((e) => e.type)).toEqual(['message', 'tool', 'tool', 'message', 'usage']);
    expect(n.finished).toBe(true);
    expect(n.error).toBeNull();
  });

  it('ends a failed turn with its message as the error; the retries before it make no event', () => {
    const { n, events } = run(FAILED_RUN);
    expect(events).toEqual([]);
    expect(n.finished).toBe(false);
    expect(n.error).toBe('We’re currently experiencing high demand, which may cause temporary errors.');
    expect(n.finalMessage).toBeNull();
  });

  it('keeps the last error line as the error when the run stopped before a turn ended, and drops it when a turn completed after it', () => {
    const retrying = run([FAILED_RUN[0]!, FAILED_RUN[1]!, FAILED_RUN[2]!, FAILED_RUN[3]!]);
    expect(retrying.n.error).toBe(JSON.parse(FAILED_RUN[3]!).message);
    expect(retrying.n.finished).toBe(false);
    const recovered = run([...FAILED_RUN.slice(0, 4), ...PATCH_RUN.slice(2)]);
    expect(recovered.n.error).toBeNull();
    expect(recovered.n.finished).toBe(true);
  });

  it('marks a failed command as error, one event per changed file, an MCP call by its tool name and path, and a web search done', () => {
    const { events } = run([
      '{"type":"item.completed","item":{"id":"i1","type":"command_execution","command":"false","aggregated_output":"","exit_code":1,"status":"failed"}}',
      '{"type":"item.completed","item":{"id":"i2","type":"file_change","changes":[{"path":"/a.txt","kind":"update"},{"path":"/b.txt","kind":"delete"}],"status":"completed"}}',
      '{"type":"item.completed","item":{"id":"i3","type":"file_change","changes":[{"path":"/c.txt","kind":"add"}],"status":"failed"}}',
      '{"type":"item.started","item":{"id":"i4","type":"mcp_tool_call","server":"fs","tool":"read_file","arguments":{"path":"/d.txt"},"status":"in_progress"}}',
      '{"type":"item.completed","item":{"id":"i5","type":"web_search","query":"vite"}}',
    ]);
    expect(events).toEqual([
      { type: 'tool', name: 'command_execution', status: 'error' },
      { type: 'tool', name: 'file_change', status: 'completed', path: '/a.txt' },
      { type: 'tool', name: 'file_change', status: 'completed', path: '/b.txt' },
      { type: 'tool', name: 'file_change', status: 'error', path: '/c.txt' },
      { type: 'tool', name: 'read_file', status: 'started', path: '/d.txt' },
      { type: 'tool', name: 'web_search', status: 'completed' },
    ]);
  });

  it('ignores what is not one of its JSON objects: banners, arrays, broken JSON, reasoning, plans and empty messages', () => {
    const { n, events } = run([
      'Reading additional input from stdin...', '[1,2]', '{"type":"item.completed"', '{"type":"item.completed","item":null}',
      '{"type":"item.completed","item":{"id":"r","type":"reasoning","text":"thinking"}}',
      '{"type":"item.updated","item":{"id":"t","type":"todo_list","items":[{"text":"x","completed":false}]}}',
      '{"type":"item.completed","item":{"id":"m","type":"agent_message","text":"  "}}',
      '{"type":"turn.completed","usage":"lots"}',
    ]);
    expect(events).toEqual([{ type: 'usage', input: 0, output: 0, cache_read: 0, cache_write: 0, cost: 0 }]);
    expect(n.finalMessage).toBeNull();
  });
});

describe('the Codex command line', () => {
  const base = { prompt: '--help me', model: null, taskId: 'T1', env: {} };

  it('runs codex exec with JSON lines, no approvals or inner sandbox, no analytics, and the prompt after --', () => {
    const { cmd, env } = codex.command(base);
    expect(cmd.slice(0, 3)).toEqual(['codex', 'exec', '--json']);
    expect(cmd).toContain('--dangerously-bypass-approvals-and-sandbox');
    expect(cmd.join(' ')).toContain('-c analytics.enabled=false');
    expect(cmd.slice(-2)).toEqual(['--', '--help me']);
    expect(cmd).not.toContain('--model');
    expect(env).toEqual({});
  });

  it('passes the task model and points Codex at OPENAI_BASE_URL as a Responses API provider keyed by OPENAI_API_KEY', () => {
    const { cmd, env } = codex.command({ ...base, model: 'gpt-5.5', env: { OPENAI_BASE_URL: 'http://127.0.0.1:4120/v1', OPENAI_API_KEY: 'k' } });
    expect(cmd.slice(-4)).toEqual(['--model', 'gpt-5.5', '--', '--help me']);
    expect(cmd).toContain('model_provider="sandboxed"');
    expect(cmd).toContain('model_providers.sandboxed={name="OPENAI_BASE_URL",base_url="http://127.0.0.1:4120/v1",env_key="OPENAI_API_KEY",wire_api="responses"}');
    expect(env).toEqual({ OPENAI_BASE_URL: 'http://127.0.0.1:4120/v1', OPENAI_API_KEY: 'k' });
  });

  it('writes a base URL as a TOML string that cannot end early or break the table, whatever it holds', () => {
    const { cmd } = codex.command({ ...base, env: { OPENAI_BASE_URL: 'http://x/"},model="evil\\é\u{1F600}\n\ud800' } });
    expect(cmd.find((a) => a.startsWith('model_providers.'))).toContain('base_url="http://x/\\"},model=\\"evil\\\\\\u00e9\\U0001f600\\u000a\\ufffd"');
  });

  it('gives Codex\'s own provider OPENAI_API_KEY as CODEX_API_KEY when no endpoint or CODEX_API_KEY is set', () => {
    expect(codex.command({ ...base, env: { OPENAI_API_KEY: 'k' } }).env).toEqual({ OPENAI_API_KEY: 'k', CODEX_API_KEY: 'k' });
    expect(codex.command({ ...base, env: { OPENAI_API_KEY: 'k', CODEX_API_KEY: 'c' } }).env).toEqual({ OPENAI_API_KEY: 'k', CODEX_API_KEY: 'c' });
  });

  it('accepts only an http(s) OPENAI_BASE_URL, naming the field', () => {
    expect(codex.envProblem({})).toBeUndefined();
    expect(codex.envProblem({ OPENAI_BASE_URL: 'https://api.example.com/v1' })).toBeUndefined();
    for (const bad of ['api.example.com', 'ftp://x/v1', '']) expect(codex.envProblem({ OPENAI_BASE_URL: bad })).toBe('env.OPENAI_BASE_URL: must be an http:// or https:// URL');
  });
});
