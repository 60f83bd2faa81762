/**
 * The sandbox's dev-server supervisor, the child of the container's init. It starts the app's `dev` script
 * on the first preview port, bound to 0.0.0.0, restarts it with backoff when it exits, restarts it when
 * package.json changes, and keeps waiting for an app that does not exist yet (an agent may create it later).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, openSync, readFileSync, statSync, truncateSync } from 'node:fs';
import { join } from 'node:path';

const HOME = process.env.HOME ?? '/home/sandbox';
const APP = join(HOME, 'workspace', 'app');
const LOGS = join(HOME, '.sandboxed');
const PORT = process.env.PORT ?? process.env.SANDBOXED_PORTS?.split(',')[0] ?? '3000';
const POLL_MS = 1000;
const MAX_BACKOFF_MS = 30_000;
const STABLE_MS = 30_000;
const STOP_GRACE_MS = 5000;
const LOG_MAX_BYTES = 5 * 1024 * 1024;

mkdirSync(LOGS, { recursive: true });
const supervisorLog = join(LOGS, 'supervisor.log');
const devLog = join(LOGS, 'dev-server.log');

function log(msg: string): void {
  appendFileSync(supervisorLog, `${new Date().toISOString()} ${msg}\n`);
}

/** Keeps a log from growing without bound: past the limit it starts over. */
function trim(file: string): void {
  if (existsSync(file) && statSync(file).size > LOG_MAX_BYTES) truncateSync(file, 0);
}

/** What to run for the app now, or why nothing can run yet. */
function plan(): { cmd: string[]; signature: string } | { wait: string } {
  const pkgPath = join(APP, 'package.json');
  if (!existsSync(pkgPath)) return { wait: 'no package.json in ~/workspace/app yet' };
  const text = readFileSync(pkgPath, 'utf8');
  let pkg: { scripts?: Record<string, string>; dependencies?: object; devDependencies?: object };
  try {
    pkg = JSON.parse(text);
  } catch {
    return { wait: 'package.json is not valid JSON (yet)' };
  }
  const dev = pkg.scripts?.dev;
  if (!dev) return { wait: 'package.json has no "dev" script' };
  const hasDeps = Object.keys({ ...pkg.dependencies, ...pkg.devDependencies }).length > 0;
  if (hasDeps && !existsSync(join(APP, 'node_modules'))) return { wait: 'dependencies are not installed yet (npm install)' };
  // Common dev servers ignore PORT/HOST: tell them on the command line.
  const extra = /\bvite\b/.test(dev) ? ['--', '--host', '0.0.0.0', '--port', PORT, '--strictPort']
    : /\bnext\b/.test(dev) ? ['--', '-H', '0.0.0.0', '-p', PORT]
    : [];
  return { cmd: ['npm', 'run', 'dev', ...extra], signature: `${text.length}:${text}` };
}

let child: ChildProcess | undefined;
let running: string | undefined;
let startedAt = 0;
let backoff = 1000;
let nextStart = 0;
let lastWait = '';
let stopping = false;

function stopChild(): Promise<void> {
  const c = child;
  if (!c || c.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => c.pid && process.kill(-c.pid, 'SIGKILL'), STOP_GRACE_MS);
    c.once('exit', () => (clearTimeout(timer), resolve()));
    if (c.pid) process.kill(-c.pid, 'SIGTERM');
  });
}

function start(cmd: string[], signature: string): void {
  trim(devLog);
  const out = openSync(devLog, 'a');
  log(`starting: ${cmd.join(' ')} (PORT=${PORT})`);
  const c = spawn(cmd[0]!, cmd.slice(1), {
    cwd: APP, detached: true, stdio: ['ignore', out, out],
    env: { ...process.env, PORT, HOST: '0.0.0.0', BROWSER: 'none' },
  });
  child = c;
  running = signature;
  startedAt = Date.now();
  c.on('exit', (code, signal) => {
    if (child !== c) return;
    child = undefined;
    running = undefined;
    if (stopping) return;
    if (Date.now() - startedAt > STABLE_MS) backoff = 1000;
    nextStart = Date.now() + backoff;
    log(`dev server exited (${signal ?? `code ${code}`}); restarting in ${backoff / 1000} s`);
    backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
  });
}

async function tick(): Promise<void> {
  if (stopping) return;
  const p = plan();
  if ('wait' in p) {
    if (p.wait !== lastWait) log(`waiting: ${p.wait}`);
    lastWait = p.wait;
    if (child) {
      log('the app went away: stopping its dev server');
      await stopChild();
    }
    return;
  }
  lastWait = '';
  if (child && running !== p.signature) {
    log('package.json changed: restarting the dev server');
    await stopChild();
    backoff = 1000;
    nextStart = 0;
  }
  if (!child && Date.now() >= nextStart) start(p.cmd, p.signature);
}

for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.on(sig, async () => {
    stopping = true;
    await stopChild();
    process.exit(0);
  });
}

log(`supervisor up: app ${APP}, port ${PORT}`);
setInterval(() => void tick().catch((err) => log(`error: ${(err as Error).message}`)), POLL_MS);
void tick();
