import { describe, expect, it } from 'vitest';
import { opencode } from '../../../src/tasks/agents/opencode.ts';
import type { TaskEventBody } from '../../../src/model/task-events.ts';

/** `opencode run --format json` output recorded from OpenCode 1.18.33 against tests/support/fake-model.mjs. */
const WRITE_RUN = [
  '{"type":"step_start","timestamp":1796139850753,"sessionID":"ses_dcdb8f6f5ffeFu4oAsiH6mJFap","part":{"id":"prt_232471b3a001AJabiC4Frmnn6H","messageID":"msg_232471252001EfpFZ3rJFETp7u","sessionID":"ses_dcdb8f6f5ffeFu4oAsiH6mJFap","snapshot":"4b825dc642cb6eb9a060e54bf8d69288fbee4904","type":"step-start"}}',
  '{"type":"text","timestamp":1796139850754,"sessionID":"ses_dcdb8f6f5ffeFu4oAsiH6mJFap","part":{"id":"prt_232471b4c001TzcT3bitCrACDY","messageID":"msg_232471252001EfpFZ3rJFETp7u","sessionID":"ses_dcdb8f6f5ffeFu4oAsiH6mJFap","type":"text","text":"I will write the file.","time":{"start":1796139850572,"end":1796139850619}}}',
  '{"type":"tool_use","timestamp":1796139850765,"sessionID":"ses_dcdb8f6f5ffeFu4oAsiH6mJFap","part":{"type":"tool","tool":"write","callID":"call_1796139850531","state":{"status":"completed","input":{"filePath":"/home/sandbox/workspace/app/hello.txt","content":"hello from the agent\\n"},"output":"Wrote file successfully.","metadata":{"diagnostics":{},"filepath":"/home/sandbox/workspace/app/hello.txt","exists":false,"truncated":false},"title":"hello.txt","time":{"start":1796139850610,"end":1796139850691}},"id":"prt_232471b5d001Pg3bcRiVH0TyoP","sessionID":"ses_dcdb8f6f5ffeFu4oAsiH6mJFap","messageID":"msg_232471252001EfpFZ3rJFETp7u"}}',
  '{"type":"step_finish","timestamp":1796139851102,"sessionID":"ses_dcdb8f6f5ffeFu4oAsiH6mJFap","part":{"id":"prt_232471d53001QiriNWwBk2n4Q4","reason":"tool-calls","snapshot":"8c9128ccd483b8b8eda73d2badbe28610d74872d","messageID":"msg_232471252001EfpFZ3rJFETp7u","sessionID":"ses_dcdb8f6f5ffeFu4oAsiH6mJFap","type":"step-finish","tokens":{"total":120,"input":100,"output":20,"reasoning":0,"cache":{"write":0,"read":0}},"cost":0}}',
  '{"type":"step_start","timestamp":1796139851661,"sessionID":"ses_dcdb8f6f5ffeFu4oAsiH6mJFap","part":{"id":"prt_232471f53001SHfhi64CvE1Mla","messageID":"msg_232471e28001SZE0hSd7Rj7Mhu","sessionID":"ses_dcdb8f6f5ffeFu4oAsiH6mJFap","snapshot":"8c9128ccd483b8b8eda73d2badbe28610d74872d","type":"step-start"}}',
  '{"type":"text","timestamp":1796139851661,"sessionID":"ses_dcdb8f6f5ffeFu4oAsiH6mJFap","part":{"id":"prt_232471f61001gN6nnfcKG2v55o","messageID":"msg_232471e28001SZE0hSd7Rj7Mhu","sessionID":"ses_dcdb8f6f5ffeFu4oAsiH6mJFap","type":"text","text":"Done: I wrote hello.txt.","time":{"start":1796139851617,"end":1796139851647}}}',
  '{"type":"step_finish","timestamp":1796139851980,"sessionID":"ses_dcdb8f6f5ffeFu4oAsiH6mJFap","part":{"id":"prt_2324720a0001wKKQjerSGHLrVN","reason":"stop","snapshot":"8c9128ccd483b8b8eda73d2badbe28610d74872d","messageID":"msg_232471e28001SZE0hSd7Rj7Mhu","sessionID":"ses_dcdb8f6f5ffeFu4oAsiH6mJFap","type":"step-finish","tokens":{"total":120,"input":100,"output":20,"reasoning":0,"cache":{"write":0,"read":0}},"cost":0}}',
];

/** The provider answering 401: one error line, then OpenCode exits 1. */
const REJECTED_RUN = [
  '{"type":"error","timestamp":1796139857118,"sessionID":"ses_dcdb8d642ffegIBZMPZFpCuR7a","error":{"name":"APIError","data":{"message":"fake provider: Incorrect API key provided","statusCode":401,"isRetryable":false,"responseHeaders":{"connection":"keep-alive","content-type":"application/json","date":"Tue, 01 Dec 2026 15:44:17 GMT","keep-alive":"timeout=5","transfer-encoding":"chunked"},"responseBody":"{\\"error\\":{\\"message\\":\\"fake provider: Incorrect API key provided\\",\\"type\\":\\"invalid_request_error\\",\\"code\\":\\"invalid_api_key\\"}}","metadata":{"url":"http://127.0.0.1:4312/v1/chat/completions"}}}}',
];

const FILE = '/home/sandbox/workspace/app/hello.txt';

function run(lines: string[]) {
  const n = opencode.normaliser();
  const events: TaskEventBody[] = lines.flatMap((l) => n.line(l));
  return { n, events };
}

describe('the OpenCode normaliser', () => {
  it('turns a run that writes a file into message, the completed write with its path, the final message and usage per step', () => {
    const { n, events } = run(WRITE_RUN);
    expect(events).toEqual([
      { type: 'message', role: 'assistant', text: 'I will write the file.' },
      { type: 'tool', name: 'write', status: 'completed', path: FILE },
      { type: 'usage', input: 100, output: 20, cache_read: 0, cache_write: 0, cost: 0 },
      { type: 'message', role: 'assistant', text: 'Done: I wrote hello.txt.' },
      { type: 'usage', input: 100, output: 20, cache_read: 0, cache_write: 0, cost: 0 },
    ]);
    expect(n.finalMessage).toBe('Done: I wrote hello.txt.');
    expect(n.usage).toMatchObject({ input: 200, output: 40 });
    expect(n.error).toBeNull();
    // OpenCode prints no result line: its exit code alone says how the run ended.
    expect(n.finished).toBe(true);
  });

  it('takes the provider\'s message from an error line', () => {
    const { n, events } = run(REJECTED_RUN);
    expect(events).toEqual([]);
    expect(n.error).toBe('fake provider: Incorrect API key provided');
  });

  it('reports a running tool as started and a failed one as error', () => {
    const { events } = run([
      '{"type":"tool_use","part":{"tool":"bash","state":{"status":"running","input":{"command":"ls"}}}}',
      '{"type":"tool_use","part":{"tool":"edit","state":{"status":"error","input":{"filePath":"/a"}}}}',
    ]);
    expect(events).toEqual([{ type: 'tool', name: 'bash', status: 'started' }, { type: 'tool', name: 'edit', status: 'error', path: '/a' }]);
  });
});

describe('the OpenCode command line', () => {
  const r = { prompt: '-x', model: null, taskId: 'T1', env: {} };

  it('runs opencode run with JSON output, the task as title and the prompt after --, allowing every tool', () => {
    const { cmd, env } = opencode.command(r);
    expect(cmd).toEqual(['opencode', 'run', '--format', 'json', '--title', 'task T1', '--', '-x']);
    expect(JSON.parse(env.OPENCODE_CONFIG_CONTENT!)).toEqual({ permission: { '*': 'allow', external_directory: 'allow' }, autoupdate: false, share: 'disabled' });
  });

  it('keeps the caller\'s inline config over its defaults, and passes the model', () => {
    const { cmd, env } = opencode.command({ ...r, model: 'fake/m', env: { OPENCODE_CONFIG_CONTENT: '{"model":"fake/m","share":"manual"}' } });
    expect(cmd.slice(-4)).toEqual(['--model', 'fake/m', '--', '-x']);
    expect(JSON.parse(env.OPENCODE_CONFIG_CONTENT!)).toMatchObject({ model: 'fake/m', share: 'manual', autoupdate: false });
  });

  it('refuses an OPENCODE_CONFIG_CONTENT that is not a JSON object, naming the field', () => {
    expect(opencode.envProblem({})).toBeUndefined();
    expect(opencode.envProblem({ OPENCODE_CONFIG_CONTENT: '{}' })).toBeUndefined();
    expect(opencode.envProblem({ OPENCODE_CONFIG_CONTENT: '{nope' })).toBe('env.OPENCODE_CONFIG_CONTENT: not valid JSON');
    expect(opencode.envProblem({ OPENCODE_CONFIG_CONTENT: '[1]' })).toBe('env.OPENCODE_CONFIG_CONTENT: must be a JSON object');
  });
});
