/**
 * POSIX sh run inside the sandbox image around an agent task. Each takes its arguments as $0, $1, ...
 * A task's files live in its own directory in the home, so they outlive the container and a restarted
 * daemon finds them: `pid` (the agent's session leader), `out.jsonl` (its JSON output), `err.log`, `exit`.
 */

import { APP_DIR_IN_HOME, HOME_IN_SANDBOX } from '../workspaces/paths.ts';

export const APP_DIR = `${HOME_IN_SANDBOX}/${APP_DIR_IN_HOME.join('/')}`;

/** The task's directory inside the sandbox. */
export function taskDir(taskId: string): string {
  return `${HOME_IN_SANDBOX}/.sandboxed/tasks/${taskId}`;
}

const GIT = 'git -c user.name=sandboxed -c user.email=sandboxed@localhost -c commit.gpgsign=false -c core.hooksPath=/dev/null';

/** Commits the app dir as it is (creating the repository if absent) and prints the commit; $0 = task id. */
export const CHECKPOINT = [
  'set -e',
  `mkdir -p ${APP_DIR} && cd ${APP_DIR}`,
  `if [ ! -d .git ]; then ${GIT} init -q; printf 'node_modules/\\n' >> .git/info/exclude; fi`,
  `${GIT} add -A`,
  `${GIT} commit -q --allow-empty --no-verify -m "sandboxed: checkpoint before task $0"`,
  'git rev-parse HEAD',
].join('\n');

/** Follows the output file until the session leader $p has exited (the pid is read once, not per use). */
const TAIL = 'exec tail -n +1 --pid="$p" -s 0.2 -f "$d/out.jsonl"';

/**
 * Kills every process of the wrapper's session ($$) but the wrapper and the shell running this (found
 * through /proc/self, which a redirection of the shell itself opens).
 */
const KILL_SESSION_BUT_ME = 'read -r me rest < /proc/self/stat; for q in /proc/[0-9]*; do n=${q#/proc/}; '
  + 's=$(sed "s/.*) //" "$q/stat" 2>/dev/null | cut -d" " -f4); '
  + '[ "$s" = "$$" ] && [ "$n" != "$$" ] && [ "$n" != "$me" ] && kill -KILL "$n" 2>/dev/null; done';

/**
 * The session leader around the agent ($0 = task dir, $1 = output cap in bytes, then the agent's argv).
 * It catches TERM (its child, the agent, still gets the default action): on a cancel it outlives the agent,
 * records its exit code, and only then lets tail end, so the grace period is the agent's. The agent's stdout
 * goes through `head -c` into out.jsonl, so the file never passes the cap (the workspace is on the host's
 * data disk); past it, `too_large` is written and the agent's whole session is killed.
 * No single quote in here: it is embedded in one.
 */
const WRAPPER = [
  'trap : TERM',
  'echo $$ > "$0/pid.tmp" && mv "$0/pid.tmp" "$0/pid"',
  'c=$1; shift',
  // head writes a file through stdio, which holds output back in 4 KiB blocks: unbuffered (stdbuf, where the
  // image has coreutils' one), each line reaches the file, and the client, as the agent prints it.
  'h=head; command -v stdbuf > /dev/null 2>&1 && h="stdbuf -o0 head"',
  '{ trap : TERM; "$@" < /dev/null 2> "$0/err.log"; echo $? > "$0/code"; } | { $h -c $((c + 1)) > "$0/out.jsonl"; '
    + `if [ "$(wc -c < "$0/out.jsonl")" -gt "$c" ]; then : > "$0/too_large"; ${KILL_SESSION_BUT_ME}; fi; }`,
  'if [ -f "$0/code" ]; then cat "$0/code" > "$0/exit"; else echo 137 > "$0/exit"; fi',
].join('\n');

/**
 * Starts argv ($0 = task dir, $1 = the output cap in bytes, then the agent) in the app dir, in a session of
 * its own (WRAPPER) so that it outlives this exec and can be signalled as a group; stdin is closed (an open
 * stdin makes OpenCode wait forever). Prints the session leader's pid on the first line, then follows the
 * agent's output like FOLLOW: one exec from launch to the last line, so no output waits for a second exec.
 */
export const LAUNCH_AND_FOLLOW = [
  'd=$0; cap=$1; shift',
  `mkdir -p "$d" ${APP_DIR} || exit 1`,
  `cd ${APP_DIR} || exit 1`,
  'rm -f "$d/pid" "$d/exit" "$d/code" "$d/too_large" && : > "$d/out.jsonl" || exit 1',
  // The subshell makes the agent an orphan that init reaps: as a child of tail it would stay a zombie
  // when it ends, and tail --pid would wait for it forever.
  `( setsid sh -c '${WRAPPER}' "$d" "$cap" "$@" < /dev/null > /dev/null 2>&1 & )`,
  'i=0; while [ ! -s "$d/pid" ] && [ $i -lt 200 ]; do sleep 0.02; i=$((i+1)); done',
  '[ -s "$d/pid" ] || { echo "the agent did not start" >&2; exit 1; }',
  'p=$(cat "$d/pid"); echo "$p"',
  TAIL,
].join('\n');

/** Sets $p to the pid in the task's pid file when it is a number, else to nothing (the file is the sandbox's to write). */
const READ_PID = 'p=$(head -c 32 "$d/pid" 2>/dev/null); case $p in ""|*[!0-9]*) p= ;; esac';

/**
 * Prints the agent's output from its first line ($0 = task dir) as it is written, and ends once the agent
 * has exited and every line is out: how a restarted daemon re-attaches. Exits 3 when the task never launched.
 */
export const FOLLOW = [
  'd=$0',
  // A launch cut short by the daemon's death may still be writing the pid: give it a few seconds.
  'i=0; while [ ! -s "$d/pid" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done',
  '[ -s "$d/pid" ] || exit 3',
  READ_PID,
  '[ -n "$p" ] || exit 3',
  'touch "$d/out.jsonl"',
  TAIL,
].join('\n');

/**
 * What a re-attach needs ($0 = task dir): the agent's pid (empty when the file holds no number), then
 * `exited` or `running`. The `exit` file is the sandbox's to write: it says `exited` only when no process
 * is left in the session the pid leads, checked from here.
 */
export const ATTACH_INFO = [
  'd=$0',
  READ_PID,
  'echo "$p"',
  'alive=',
  'if [ -n "$p" ]; then for q in /proc/[0-9]*; do',
  '  s=$(sed "s/.*) //" "$q/stat" 2>/dev/null | cut -d" " -f4); [ "$s" = "$p" ] && { alive=1; break; }',
  'done; fi',
  'if [ -f "$d/exit" ] && [ -z "$alive" ]; then echo exited; else echo running; fi',
].join('\n');

/** Prints `<exit code or "none">`, then `too_large` or `ok` (the output cap was reached), then the last 2 KB of the agent's stderr; $0 = task dir. */
export const AGENT_EXIT = 'cat "$0/exit" 2>/dev/null || echo none\nif [ -f "$0/too_large" ]; then echo too_large; else echo ok; fi\ntail -c 2000 "$0/err.log" 2>/dev/null || true';

/** The most paths a task's result lists in files_changed (a sandbox can create millions of files). */
export const MAX_FILES_CHANGED = 1000;

/** Prints the paths that differ from commit $0 (tracked and new, committed or not), one per line; at most one more than MAX_FILES_CHANGED. */
export const FILES_CHANGED = [
  `cd ${APP_DIR} || exit 0`,
  `{ git -c core.quotePath=false diff --name-only --no-renames "$0" -- && git -c core.quotePath=false ls-files --others --exclude-standard; } | head -n ${MAX_FILES_CHANGED + 1}`,
].join('\n');

/** Exit code when the app has no `build` script. */
export const NO_BUILD = 200;

/** Runs `npm run build` when package.json has a build script, for at most $0 s; prints the last 2 KB of its output. */
export const BUILD_CHECK = [
  `cd ${APP_DIR} 2>/dev/null || exit ${NO_BUILD}`,
  `node -e 'process.exit(JSON.parse(require("fs").readFileSync("package.json","utf8")).scripts?.build ? 0 : ${NO_BUILD})' 2>/dev/null || exit ${NO_BUILD}`,
  'out=$(timeout -k 5 "$0" npm run build 2>&1); code=$?',
  'printf "%s" "$out" | tail -c 2000',
  'exit $code',
].join('\n');

/** Prints the HTTP status the app answers on port $0 with, trying for up to $1 s while there is
 * an app for the supervisor to start; 000 when nothing answers. */
export const HEALTH_CHECK = [
  'end=$(( $(date +%s) + $1 ))',
  `[ -f ${APP_DIR}/package.json ] || end=0`,
  'while :; do',
  `  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$0/" 2>/dev/null)`,
  '  if [ "$code" != 000 ] || [ "$(date +%s)" -ge "$end" ]; then echo "${code:-000}"; exit 0; fi',
  '  sleep 0.5',
  'done',
].join('\n');
