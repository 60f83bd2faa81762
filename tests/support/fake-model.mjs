// A scripted model server for agent task tests, run with the sandbox image's Node inside the sandbox.
// It speaks Anthropic's Messages API (Claude Code) and OpenAI's chat completions (OpenCode), streaming.
// Script: while the conversation has no tool result and the write tool is offered, answer with a short
// text and a call of the write tool; after that, answer with the final text.
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

function sse(res, frames) {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  for (const [event, data] of frames) res.write(`${event ? `event: ${event}\n` : ''}data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
  res.end();
}

function anthropic(res, body) {
  const offered = (body.tools ?? []).some((t) => t.name === 'Write');
  const answered = (body.messages ?? []).some((m) => Array.isArray(m.content) && m.content.some((c) => c.type === 'tool_result'));
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
  const answered = (body.messages ?? []).some((m) => m.role === 'tool');
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

createServer((req, res) => {
  let raw = '';
  req.on('data', (c) => (raw += c));
  req.on('end', async () => {
    const kind = req.url.startsWith('/v1/messages') ? 'anthropic' : req.url.startsWith('/v1/chat/completions') ? 'openai' : undefined;
    if (req.method !== 'POST' || !kind) return res.writeHead(404).end();
    if (mode === 'hang') return; // never answers: a run that only a cancel or a timeout ends
    if (errors[mode]) return res.writeHead(Number(mode), { 'content-type': 'application/json' }).end(JSON.stringify(errors[mode][kind]));
    let body = {};
    try {
      body = JSON.parse(raw);
    } catch {
      return res.writeHead(400).end();
    }
    const final = kind === 'anthropic'
      ? (body.messages ?? []).some((m) => Array.isArray(m.content) && m.content.some((c) => c.type === 'tool_result'))
      : (body.messages ?? []).some((m) => m.role === 'tool');
    if (final) await sleep(Number(finalDelay));
    (kind === 'anthropic' ? anthropic : openai)(res, body);
  });
}).listen(Number(port), '127.0.0.1', () => console.log(`fake model on ${port} (${mode})`));
