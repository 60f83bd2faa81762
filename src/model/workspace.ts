/**
 * What the runtime mounts at /home/sandbox for a sandbox: chosen by the workspace store and passed through
 * the services unread. The host store names a directory of this host; another store (a volume claim) would
 * add its own kind, which only its runtime reads.
 */
export type WorkspaceMount = { kind: 'host-dir'; path: string };
