import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chownSync, lchownSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HostWorkspaceStore } from '../../src/workspaces/host-store.ts';
import { SANDBOX_GID, SANDBOX_UID, Workspaces } from '../../src/workspaces/workspaces.ts';
import { unmountUnder } from '../support/daemon.ts';
import { fingerprint } from './plant.ts';
import { workspaceStoreContract, type WorkspaceBackend } from './contract.ts';

const LIMIT_MB = 64;

/**
 * Host-directory workspaces as the daemon keeps them: loop-mounted ext4 images under a data dir of their own,
 * beside a root-owned directory and file that planted links point at.
 */
async function hostBackend(): Promise<WorkspaceBackend> {
  const dataDir = mkdtempSync(join(tmpdir(), 'sandboxd-store-contract-'));
  const workspaces = new Workspaces(dataDir);
  const outsideDir = join(dataDir, 'outside');
  mkdirSync(join(outsideDir, 'sub'), { recursive: true });
  writeFileSync(join(outsideDir, 'a.txt'), 'outside a');
  writeFileSync(join(outsideDir, 'sub', 'b.txt'), 'outside b');
  const outsideFile = join(dataDir, 'outside-file');
  writeFileSync(outsideFile, 'outside secret');
  const homes: string[] = [];
  const inHome = (sandboxId: string, parts: string[]) => join(workspaces.dir(sandboxId), ...parts);
  return {
    store: new HostWorkspaceStore(workspaces, dataDir),
    limitMb: LIMIT_MB,
    async createHome(sandboxId) {
      homes.push(sandboxId);
      await workspaces.ensure(sandboxId, { limitMb: LIMIT_MB, convert: false });
    },
    async plantLink(sandboxId, parts, target) {
      symlinkSync(target, inHome(sandboxId, parts));
      lchownSync(inHome(sandboxId, parts), SANDBOX_UID, SANDBOX_GID);
    },
    async plantFifo(sandboxId, parts) {
      execFileSync('mkfifo', [inHome(sandboxId, parts)]);
      chownSync(inHome(sandboxId, parts), SANDBOX_UID, SANDBOX_GID);
    },
    outside: { dir: outsideDir, file: outsideFile },
    // The planted targets, and the names beside the homes and in the data dir (where a climb out would write);
    // the spool is the store's own, made at the first upload.
    async outsideFingerprint() {
      const names = (dir: string) => readdirSync(dir).filter((n) => n !== 'spool').sort().join('/');
      return createHash('sha256').update(fingerprint(outsideDir, outsideFile)).update(names(dataDir)).update(names(workspaces.root)).digest('hex');
    },
    hidden: [dataDir],
    async cleanup() {
      for (const id of homes) await workspaces.purge(id).catch(() => undefined);
      unmountUnder(dataDir);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

workspaceStoreContract('host directories', hostBackend);
