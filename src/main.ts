import { once } from 'node:events';
import { createApiServer } from './api/server.ts';
import { ConfigError, loadConfig, type Config } from './config.ts';
import { createLogger, errorMessage } from './log.ts';
import { Metrics } from './metrics.ts';
import { installLastResort, reportUnexpected } from './boundary.ts';
import { limitConnectionsPerAddress } from './http/connection-limits.ts';
import { WorkerPool } from './pool.ts';
import { hardNofileLimit } from './runtime/limits.ts';
import { Authenticator } from './auth/authenticator.ts';
import { PreviewTokens } from './auth/preview-tokens.ts';
import { PreviewGrants } from './auth/preview-grants.ts';
import { createGatewayServer } from './gateway/server.ts';
import { Waker } from './gateway/wake.ts';
import { Activity } from './sandboxes/activity.ts';
import { Admission } from './sandboxes/admission.ts';
import { createRuntime } from './runtime/factory.ts';
import { RuntimeSetupError } from './runtime/runtime.ts';
import { Lifecycle } from './sandboxes/lifecycle.ts';
import { Wakes } from './sandboxes/wake.ts';
import { SessionLimits } from './exec/sessions.ts';
import { Health } from './health/service.ts';
import { Exec } from './exec/service.ts';
import { SandboxDirectory } from './sandboxes/directory.ts';
import { PreviewTargets } from './sandboxes/previews.ts';
import { Files } from './files/service.ts';
import { Processes } from './processes/service.ts';
import { watchDataDisk } from './store/disk.ts';
import { openStore } from './store/index.ts';
import { ensureDataMarker } from './store/marker.ts';
import { Tasks } from './tasks/service.ts';
import { Secrets } from './secrets/service.ts';
import { SecretBox } from './secrets/box.ts';
import { secureDataDir } from './store/file-modes.ts';
import { convertLegacyOwners } from './workspaces/legacy-owner.ts';
import { ensureNosuidRoot } from './workspaces/nosuid.ts';
import { setSandboxOwner, Workspaces } from './workspaces/workspaces.ts';
import { HostWorkspaceStore } from './workspaces/host-store.ts';
import { resetSpool } from './workspaces/spool.ts';

/** Boots the daemon: config → store → runtime → worker pool → reconcile → listeners. */
async function main(): Promise<void> {
  // Whatever any thread creates (SQLite's -wal/-shm, keys, spool files) is the daemon's alone, whatever
  // umask it was started with; workspace files are given to the sandbox user explicitly.
  process.umask(0o077);
  let config: Config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`sandboxd: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger(config.logLevel, 'sandboxd');
  const metrics = new Metrics();
  installLastResort(log, metrics);
  const hostNofile = hardNofileLimit();
  if (hostNofile !== undefined && hostNofile < config.runtime.docker.nofile) {
    log.warn('SANDBOXD_NOFILE is above this host\'s hard open-files limit; sandboxes get the host limit', { requested: config.runtime.docker.nofile, host_limit: hostNofile });
    config = { ...config, runtime: { ...config.runtime, docker: { ...config.runtime.docker, nofile: hostNofile } } };
  }
  try {
    ensureDataMarker(config.dataDir, config.instance, log);
  } catch (err) {
    log.error(errorMessage(err));
    process.exit(1);
  }
  setSandboxOwner(config.sandboxUid, config.sandboxGid);
  const workspaces = new Workspaces(config.dataDir, log);
  try {
    // Files at rest: modes fixed (and warned about) at every boot, workspaces nosuid,nodev, uid 1000 converted.
    secureDataDir(config.dataDir, log);
    await ensureNosuidRoot(workspaces.root, log);
    await convertLegacyOwners(workspaces.root, config.sandboxUid, config.sandboxGid, log);
  } catch (err) {
    log.error('cannot secure the data directory; the daemon must run as root', { error: errorMessage(err) });
    process.exit(1);
  }
  const store = openStore(config.dataDir, config.sqliteBusyTimeoutMs, config.minFreeMb * 1024 * 1024, log);
  // This thread answers every request: WAL checkpoints run in a background worker (the pool's checkpointWal).
  store.db.leaveCheckpointsToOthers();
  watchDataDisk(store.db, config.minFreeMb * 1024 * 1024, log);
  // The keys first: a damaged key file stops the boot before any background work has started.
  const previewTokens = PreviewTokens.load(config.previewSecret, config.dataDir);
  const secretBox = SecretBox.load(config.dataDir);
  const runtime = createRuntime(config);
  try {
    await runtime.prepare({ isolation: config.hostFirewall });
  } catch (err) {
    if (err instanceof RuntimeSetupError && err.step === 'isolation') {
      log.error('cannot shield the host from sandboxes (it takes root or CAP_NET_ADMIN, iptables and ip6tables); fix that, or set SANDBOXD_HOST_FIREWALL=false to run without it', { error: errorMessage(err) });
    } else {
      log.error('the container runtime is not usable; is Docker running and /var/run/docker.sock reachable?', { error: errorMessage(err) });
    }
    process.exit(1);
  }
  if (!config.hostFirewall) {
    log.warn('SANDBOXD_HOST_FIREWALL=false: NO egress firewall. Sandboxes can open connections to services on this host, its LAN, cloud metadata (169.254.169.254) and other containers; SANDBOXD_EGRESS_ALLOW and egress "none" are not enforced');
  }

  try {
    const retired = await runtime.removeForeignUser(new Set(store.sandboxes.all().map((r) => r.id)));
    // The reconciler sees them gone (stopped, `removed`); the next start or wake recreates them as the new user.
    if (retired.length) log.warn('removed containers made for another sandbox uid; they are recreated at their next start', { sandboxes: retired, uid: config.sandboxUid });
  } catch (err) {
    log.warn('cannot list containers made for another sandbox uid; they keep the old user until recreated', { error: errorMessage(err) });
  }
  // A host reboot drops the workspaces' loop mounts (their images stay): mount them all before the boot
  // reconcile can start a container or the API can touch a file, so nothing lands under a bare mount point.
  try {
    const mounts = await workspaces.volumes.mountAll();
    if (mounts.mounted || mounts.failed) log.info('workspace images mounted', mounts);
  } catch (err) {
    log.error('cannot mount the workspace images; sandboxes whose image is unmounted fail to start until this is fixed', { error: errorMessage(err) });
  }
  const pool = new WorkerPool(config, log, metrics);
  try {
    const report = await pool.reconcile(true);
    log.info('boot reconcile done', { checked: report.checked, repaired: report.repaired.length, orphans: report.orphans.length });
  } catch (err) {
    // A full data disk refuses the pass's writes: serve reads anyway; the periodic pass finishes the job.
    log.warn('boot reconcile failed; the periodic pass retries it', { error: errorMessage(err) });
  }
  const admission = new Admission(config.pressure, { dir: config.dataDir, minFreeBytes: config.minFreeMb * 1024 * 1024 });
  pool.startBackground(admission);

  try {
    resetSpool(config.dataDir);
  } catch (err) {
    log.warn('cannot empty the upload spool (is the data disk full?); uploads may fail until it has room', { error: errorMessage(err) });
  }
  const lifecycle = new Lifecycle(config, store, runtime, workspaces, admission, log);
  const activity = new Activity(store.activity, log, metrics);
  activity.clearStaleLeases(Date.now());
  // Open sessions per sandbox and tenant; background processes count only while their sandbox runs.
  const sessions = new SessionLimits(config, (id) => store.sandboxes.get(id)?.status === 'running', metrics);
  const files = new Files({
    config, workspaces: new HostWorkspaceStore(workspaces, config.dataDir), audit: (e) => store.audit.record(e), lifecycle,
    isRunning: async (id) => (await runtime.inspect(id))?.running ?? false, pool, sessions,
  });
  const processes = new Processes({ pool, runtime, store: store.processes, sessions });
  const wakes = new Wakes(store.sandboxes, lifecycle, runtime, config.stopGraceS, log);
  const tasks = new Tasks({ config, store, pool, wakes, activity, metrics, log: createLogger(config.logLevel, 'tasks') });
  try {
    const resumed = tasks.resume();
    if (resumed) log.info('re-attached to tasks left running by the previous daemon', { tasks: resumed });
  } catch (err) {
    log.warn('could not re-attach to the tasks left running; they are picked up at the next start', { error: errorMessage(err) });
  }
  // One authenticator for both listeners: a client guessing tokens on either is limited on both.
  const auth = new Authenticator(config, { audit: store.audit, metrics, log });
  const server = createApiServer({
    config, metrics, log, auth, lifecycle, wakes, sessions, processes, files, activity, tasks,
    sandboxes: new SandboxDirectory(store.sandboxes, runtime, workspaces),
    health: new Health({ config, store, runtime, pool, workspaces, metrics }),
    exec: new Exec({ pool, sessions, wakes, activity, audit: store.audit }),
    previewGrants: new PreviewGrants(previewTokens, store.audit),
    secrets: new Secrets(store, secretBox),
  });
  server.listen(config.api.port, config.api.host);
  await once(server, 'listening');
  // After the bind, a listener error (EMFILE on accept under a connection flood) is one refused connection, not an exit.
  server.on('error', (err) => reportUnexpected(log, metrics, 'api_listener', err));
  // Open connections are capped below the open-files limit, so a connection flood is refused at the door
  // instead of leaving no descriptor for SQLite, the engine socket or worker threads.
  server.maxConnections = config.limits.maxConnections;
  limitConnectionsPerAddress(server, config.limits.maxConnectionsPerAddress, () => metrics.inc('sandboxd_connections_refused_total', 'Connections closed at once because their address already held its maximum, by listener.', { listener: 'api' }));
  log.info('API listening', { bind: `${config.api.host}:${config.api.port}`, auth: config.authDisabled ? 'disabled (loopback only)' : 'on', data_dir: config.dataDir });
  const targets = new PreviewTargets(store.sandboxes, runtime);
  const waker = new Waker(targets, wakes);
  const gateway = createGatewayServer({
    config, tokens: previewTokens, auth, targets, waker, activity, log: createLogger(config.logLevel, 'gateway'), metrics,
  });
  gateway.listen(config.httpPort, config.gatewayHost);
  await once(gateway, 'listening');
  gateway.on('error', (err) => reportUnexpected(log, metrics, 'gateway_listener', err));
  gateway.maxConnections = config.limits.maxConnections;
  limitConnectionsPerAddress(gateway, config.limits.maxConnectionsPerAddress, () => metrics.inc('sandboxd_connections_refused_total', 'Connections closed at once because their address already held its maximum, by listener.', { listener: 'gateway' }));
  log.info('preview gateway listening', { bind: `${config.gatewayHost}:${config.httpPort}`, pattern: `s-<id>-<port>.preview.${config.previewDomain}` });

  const shutdown = async (signal: string) => {
    log.info('shutting down', { signal });
    server.close();
    server.closeAllConnections();
    gateway.close();
    gateway.closeAllConnections();
    tasks.close();
    activity.flush();
    await pool.close().catch(() => undefined);
    store.db.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`sandboxd: failed to start: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
