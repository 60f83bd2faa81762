import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createSandbox, eventually, execIn, startDaemon, type Daemon } from '../support/daemon.ts';

/** Opens a WebSocket and resolves once it is open (rejects with the HTTP status if refused). */
function connect(url: string, headers: Record<string, string> = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`refused with ${res.statusCode}`)));
    ws.once('error', reject);
  });
}

/** Collects a terminal's output until `pattern` shows up in it. */
function waitForOutput(ws: WebSocket, pattern: RegExp, ms = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`no ${pattern} in terminal output: ${JSON.stringify(out)}`)), ms);
    const onData = (data: Buffer, binary: boolean) => {
      if (!binary) return;
      out += data.toString();
      if (pattern.test(out)) {
        clearTimeout(timer);
        ws.off('message', onData);
        resolve(out);
      }
    };
    ws.on('message', onData);
  });
}

describe('terminal and exec over WebSocket', () => {
  let d: Daemon;
  let id: string;
  let wsBase: string;

  beforeAll(async () => {
    d = await startDaemon();
    id = await createSandbox(d);
    wsBase = d.url.replace('http', 'ws');
  });
  afterAll(() => d?.cleanup());

  const ps = async () => (await execIn(id, ['ps', '-o', 'pid,args'])).output;

  it('runs a login shell on a PTY: typed input is executed and its output comes back', async () => {
    const ws = await connect(`${wsBase}/v1/sandboxes/${id}/terminal`);
    ws.send(Buffer.from('echo $((6*7))\n'));
    expect(await waitForOutput(ws, /\r?\n42\r?\n/)).toMatch(/42/);
    ws.close();
  });

  it('applies resize frames to the terminal size', async () => {
    const ws = await connect(`${wsBase}/v1/sandboxes/${id}/terminal?cols=100&rows=30`);
    ws.send(Buffer.from('stty size\n'));
    await waitForOutput(ws, /30 100/);
    ws.send(JSON.stringify({ type: 'resize', cols: 132, rows: 43 }));
    // The resize is applied beside the input stream, not in it: ask again until the shell sees the new size.
    const resized = await eventually(async () => {
      ws.send(Buffer.from('stty size\n'));
      return waitForOutput(ws, /43 132/, 500).then(() => true, () => false);
    }, 5000, 0);
    expect(resized).toBe(true);
    ws.close();
  });

  it('reports the exit code in a JSON frame when the shell exits', async () => {
    const ws = await connect(`${wsBase}/v1/sandboxes/${id}/terminal`);
    const exit = new Promise<any>((resolve) => ws.on('message', (data, binary) => !binary && resolve(JSON.parse(data.toString()))));
    ws.send(Buffer.from('exit 7\n'));
    expect(await exit).toEqual({ type: 'exit', code: 7 });
  });

  it('leaves no shell or job behind when the socket closes', async () => {
    const ws = await connect(`${wsBase}/v1/sandboxes/${id}/terminal`);
    ws.send(Buffer.from('sleep 404 & sleep 405\n'));
    expect(await eventually(async () => /sleep 405/.test(await ps()), 5000)).toBe(true);
    ws.close();
    expect(await eventually(async () => !/sleep 40[45]|-sh|sh -l/.test(await ps()), 5000)).toBe(true);
  });

  it('streams exec output as JSON frames before the command ends, with stdin and an exit frame', async () => {
    const ws = await connect(`${wsBase}/v1/sandboxes/${id}/exec/ws`);
    const frames: { m: any; at: number }[] = [];
    const closed = new Promise<void>((resolve) => ws.on('close', () => resolve()));
    ws.on('message', (data) => {
      const m = JSON.parse(data.toString());
      frames.push({ m, at: Date.now() });
      if (m.type === 'stdout' && m.data.includes('l3')) {
        ws.send(JSON.stringify({ type: 'stdin', data: 'typed\n' }));
        ws.send(JSON.stringify({ type: 'stdin_end' }));
      }
    });
    ws.send(JSON.stringify({ cmd: ['sh', '-c', 'for i in 1 2 3; do echo l$i; sleep 0.2; done; cat'] }));
    await closed;
    const out = frames.filter((f) => f.m.type === 'stdout');
    expect(out.map((f) => f.m.data).join('')).toBe('l1\nl2\nl3\ntyped\n');
    const exit = frames.at(-1)!;
    expect(exit.m).toMatchObject({ type: 'exit', exit_code: 0 });
    expect(exit.at - out[0]!.at).toBeGreaterThan(300);
  });

  it('kills an exec/ws command when the client disconnects', async () => {
    const ws = await connect(`${wsBase}/v1/sandboxes/${id}/exec/ws`);
    ws.send(JSON.stringify({ cmd: ['sleep', '406'] }));
    expect(await eventually(async () => /sleep 406/.test(await ps()), 5000)).toBe(true);
    ws.close();
    expect(await eventually(async () => !/sleep 406/.test(await ps()), 5000)).toBe(true);
  });

  it('refuses the upgrade with the error envelope for an unknown sandbox or a bad query', async () => {
    await expect(connect(`${wsBase}/v1/sandboxes/01ARZ3NDEKTSV4RRFFQ69G5FAV/terminal`)).rejects.toThrow('404');
    await expect(connect(`${wsBase}/v1/sandboxes/${id}/terminal?cols=0`)).rejects.toThrow('400');
    await expect(connect(`${wsBase}/v1/sandboxes`)).rejects.toThrow('404');
  });
});
