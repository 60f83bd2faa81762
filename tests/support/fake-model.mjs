// A scripted model server for agent task tests, run with the sandbox image's Node inside the sandbox.
// It speaks Anthropic's Messages API (Claude Code), OpenAI's chat completions (OpenCode) and OpenAI's
// Responses API (Codex), streaming. Script: while the conversation has no tool result and the write tool
// is offered, answer with a short text and a call of the write tool; after that, answer with the final text.
// Codex's write tool is `apply_patch` (a freeform tool, offered for models in its catalogue); for other
// model names it offers only its shell, `exec_command`, which then writes the file.
// Usage: node fake-model.mjs <port> <mode: ok|401|500|hang> [delay before the final answer, ms]
import { createServer } from 'node:http';

const [port, mode = 'ok', finalDelay = '0'] = process.argv.slice(2);
const FILE = '/home/sandbox/workspace/app/hello.txt';
const CONTENT = 'hello from the agent\n';
const FINAL = 'Done: I wrote hello.txt.';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const errors = {
  401: { anthropic: { type: 'error', error: { type: 'authentication_error', message: 'fake provider: invalid x-api-key' } }, openai: { error: { message: 'fake provider: Incorrect API key provided', type: 'invalid_request_error', code: 'invalid_api_key' } } },
  500: { anthropic: { type: 'error', error: { type: 'api_error', message: 'fake provider: upstream exploded' } }, openai: { error: { message: 'fake provider: upstream exploded', type: 'server_error', code: null } } },
};
errors[401].responses = errors[401].openai;
errors[500].responses = errors[500].openai;

/** Whether the conversation already holds a tool's result, per API: then the final answer is due. */
const HAS_TOOL_RESULT = {
  anthropic: (body) => (body.messages ?? []).some((m) => Array.isArray(m.content) && m.content.some((c) => c.type === 'tool_result')),
  openai: (body) => (body.messages ?? []).some((m) => m.role === 'tool'),
  responses: (body) => (body.input ?? []).some((i) => i.type === 'custom_tool_call_output' || i.type === 'function_call_output'),
};

function sse(res, frames) {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  for (const [event, data] of frames) res.write(`${event ? `event: ${event}\n` : ''}data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
  res.end();
}

function anthropic(res, body) {
  const offered = (body.tools ?? []).some((t) => t.name === 'Write');
  const answered = HAS_TOOL_RESULT.anthropic(body);
  const usage = { input_tokens: 100, output_tokens: 1, cache_read_input_tokens: 7, cache_creation_input_tokens: 3 };
  const frames = [['message_start', { type: 'message_start', message: { id: `msg_${Date.now()}`, type: 'message', role: 'assistant', model: body.model, content: [], stop_reason: null, stop_sequence: null, usage } }]];
  const text = (index, t) => [
    ['content_block_start', { type: 'content_block_start', index, content_block: { type: 'text', text: '' } }],
    ['content_block_delta', { type: 'content_block_delta', index, delta: { type: 'text_delta', text: t } }],
    ['content_block_stop', { type: 'content_block_stop', index }],
  ];
  let stop = 'end_turn';
  if (offered && !answered) {
    stop = 'tool_use';
    frames.push(...text(0, 'I will write the file.'),
      ['content_block_start', { type: 'content_block_start', index: 1, content_block: { type: 'tool_use', id: `toolu_${Date.now()}`, name: 'Write', input: {} } }],
      ['content_block_delta', { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: JSON.stringify({ file_path: FILE, content: CONTENT }) } }],
      ['content_block_stop', { type: 'content_block_stop', index: 1 }]);
  } else {
    frames.push(...text(0, FINAL));
  }
  frames.push(['message_delta', { type: 'message_delta', delta: { stop_reason: stop, stop_sequence: null }, usage: { output_tokens: 20 } }], ['message_stop', { type: 'message_stop' }]);
  sse(res, frames);
}

function openai(res, body) {
  const offered = (body.tools ?? []).some((t) => t.function?.name === 'write');
  const answered = HAS_TOOL_RESULT.openai(body);
  const chunk = (delta, finish = null) => ({ id: 'chatcmpl-fake', object: 'chat.completion.chunk', created: Math.floor(Date.now() / 1000), model: body.model, choices: [{ index: 0, delta, finish_reason: finish }] });
  const frames = [];
  if (offered && !answered) {
    frames.push([null, chunk({ role: 'assistant', content: 'I will write the file.' })],
      [null, chunk({ tool_calls: [{ index: 0, id: `call_${Date.now()}`, type: 'function', function: { name: 'write', arguments: JSON.stringify({ filePath: FILE, content: CONTENT }) } }] })],
      [null, chunk({}, 'tool_calls')]);
  } else {
    frames.push([null, chunk({ role: 'assistant', content: FINAL })], [null, chunk({}, 'stop')]);
  }
  frames.push([null, { id: 'chatcmpl-fake', object: 'chat.completion.chunk', created: 0, model: body.model, choices: [], usage: { prompt_tokens: 100, completion_tokens: 20, total_tokens: 120 } }], [null, '[DONE]']);
  sse(res, frames);
}

// Codex reads each finished output item from `response.output_item.done` and ends the turn at `response.completed`.
function responses(res, body) {
  const tools = body.tools ?? [];
  const patch = tools.some((t) => t.type === 'custom' && t.name === 'apply_patch');
  const shell = tools.some((t) => t.type === 'function' && t.name === 'exec_command');
  const answered = HAS_TOOL_RESULT.responses(body);
  const id = `resp_${Date.now()}`;
  const items = [];
  const message = (t) => ({ type: 'message', id: `msg_${Date.now()}_${items.length}`, role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: t, annotations: [] }] });
  if ((patch || shell) && !answered) {
    items.push(message('I will write the file.'));
    items.push(patch
      ? { type: 'custom_tool_call', id: `ctc_${Date.now()}`, call_id: `call_${Date.now()}`, name: 'apply_patch', status: 'completed', input: `*** Begin Patch\n*** Add File: ${FILE}\n+${CONTENT.trimEnd()}\n*** End Patch\n` }
      : { type: 'function_call', id: `fc_${Date.now()}`, call_id: `call_${Date.now()}`, name: 'exec_command', arguments: JSON.stringify({ cmd: `printf '%s\\n' '${CONTENT.trimEnd()}' > ${FILE}` }) });
  } else {
    items.push(message(FINAL));
  }
  const frames = [['response.created', { type: 'response.created', response: { id, object: 'response', status: 'in_progress', model: body.model, output: [] } }]];
  items.forEach((item, i) => {
    frames.push(['response.output_item.added', { type: 'response.output_item.added', output_index: i, item: item.type === 'message' ? { ...item, status: 'in_progress', content: [] } : item }]);
    if (item.type === 'message') frames.push(['response.output_text.delta', { type: 'response.output_text.delta', output_index: i, item_id: item.id, content_index: 0, delta: item.content[0].text }]);
    frames.push(['response.output_item.done', { type: 'response.output_item.done', output_index: i, item }]);
  });
  const usage = { input_tokens: 100, input_tokens_details: { cached_tokens: 7 }, output_tokens: 20, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 120 };
  frames.push(['response.completed', { type: 'response.completed', response: { id, object: 'response', status: 'completed', model: body.model, output: items, usage } }]);
  sse(res, frames);
}

const KINDS = [['/v1/messages', 'anthropic'], ['/v1/chat/completions', 'openai'], ['/v1/responses', 'responses']];
const ANSWER = { anthropic, openai, responses };

createServer((req, res) => {
  let raw = '';
  req.on('data', (c) => (raw += c));
  req.on('end', async () => {
    const kind = KINDS.find(([path]) => req.url.startsWith(path))?.[1];
    if (req.method !== 'POST' || !kind) return res.writeHead(404).end();
    if (mode === 'hang') return; // never answers: a run that only a cancel or a timeout ends
    if (errors[mode]) return res.writeHead(Number(mode), { 'content-type': 'application/json' }).end(JSON.stringify(errors[mode][kind]));
    let body = {};
    try {
      body = JSON.parse(raw);
    } catch {
      return res.writeHead(400).end();
    }
    if (HAS_TOOL_RESULT[kind](body)) await sleep(Number(finalDelay));
    ANSWER[kind](res, body);
  });
}).listen(Number(port), '127.0.0.1', () => console.log(`fake model on ${port} (${mode})`));
