/**
 * POSIX sh run inside sandboxes (busybox or Debian): how commands are wrapped, signalled and tracked.
 * Kept in one place so every image only needs `sh`, `setsid`, `cat`, `sed`, `cut`, `tail` and `/proc`.
 */

/** Where exec wrappers record their pids and detached processes their exit codes: the /tmp tmpfs, gone when the container stops. */
export const EXEC_STATE_DIR = '/tmp/.sandboxed-exec';

/** Where a detached process's output goes: in the home, so it outlives the container. */
export const PROCESS_LOG_DIR = '$HOME/.sandboxed/processes';

/** Printed by RECORD_PID_AND_EXEC on stdout just before it becomes the command; nothing of the command's can come before it. */
export const EXEC_STARTED = '\x1esandboxd:run\x1e';
/** Printed instead of EXEC_STARTED when the working directory cannot be entered (the command is not run). */
export const EXEC_BAD_CWD = '\x1esandboxd:cwd\x1e';

/**
 * Wraps argv ($0 = a key, $1 = the working directory, the rest = the command): records the pid, a session
 * leader under Docker exec, enters the directory, says which of the two happened (EXEC_STARTED or
 * EXEC_BAD_CWD), then becomes the command. The wrapper enters the directory itself, rather than the engine,
 * so that a bad one is told apart from the command's own output and exit code.
 */
export const RECORD_PID_AND_EXEC = [
  `mkdir -p ${EXEC_STATE_DIR} && echo $$ > ${EXEC_STATE_DIR}/"$0" || exit 1`,
  // -P: the directory as the kernel resolves it (as the engine's own chdir did), not a path spelled with '..' over links.
  `cd -P -- "$1" 2>/dev/null || { printf '${EXEC_BAD_CWD}'; exit 126; }`,
  'shift',
  `printf '${EXEC_STARTED}'`,
  'exec "$@"',
].join('\n');

/**
 * Copies the image's home skeleton (`/etc/skel`, when it has one) into a new home, run once by the sandbox
 * user inside the sandbox after its first start: the copy sees only what the sandbox itself sees, so nothing a
 * skeleton holds (links, devices, odd modes) can touch the host, and what it makes is the sandbox user's.
 */
export const SEED_HOME = '[ -d /etc/skel ] || exit 0\ncp -R /etc/skel/. /home/sandbox/';

/**
 * Sends signal $2 to every process in session $1. An interactive shell gives each job its own process
 * group, so signalling a group alone would leave background jobs behind.
 */
const SIGNAL_SESSION = [
  'for d in /proc/[0-9]*; do',
  '  s=$(sed "s/.*) //" "$d/stat" 2>/dev/null | cut -d" " -f4)',
  '  [ "$s" = "$1" ] && kill -"$2" "${d#/proc/}" 2>/dev/null',
  'done',
  'exit 0',
].join('\n');

/** Signals ($2) the session whose leader's pid is recorded under key $1 by RECORD_PID_AND_EXEC. */
export const SIGNAL_RECORDED = `sid=$(cat ${EXEC_STATE_DIR}/"$1" 2>/dev/null) || exit 0\nset -- "$sid" "$2"\n${SIGNAL_SESSION}`;

/** Signals ($2) the session led by pid $1. */
export const SIGNAL_PID = SIGNAL_SESSION;

/**
 * Starts argv ($0 = a key, $@ = the command) in the background in a session of its own, output to its
 * log, exit code to the state dir; prints its pid.
 */
export const LAUNCH_DETACHED = [
  'key=$0',
  `mkdir -p "${PROCESS_LOG_DIR}" ${EXEC_STATE_DIR} || exit 1`,
  `setsid sh -c '"$@"; echo $? > ${EXEC_STATE_DIR}/"$0".exit' "$key" "$@" > "${PROCESS_LOG_DIR}/$key.log" 2>&1 < /dev/null &`,
  'echo $!',
].join('\n');

/** For each argument `pid:key`, prints `pid running`, `pid exited CODE` or `pid gone`. */
export const PROCESS_STATUS = [
  'for x in "$@"; do',
  '  pid=${x%%:*}; key=${x#*:}',
  `  if [ -f ${EXEC_STATE_DIR}/"$key".exit ]; then echo "$pid exited $(cat ${EXEC_STATE_DIR}/"$key".exit)"`,
  '  elif [ -d /proc/"$pid" ]; then echo "$pid running"',
  '  else echo "$pid gone"; fi',
  'done',
].join('\n');
