import type { SandboxRecord } from '../model/sandbox.ts';
import type { Actor } from '../sandboxes/lifecycle.ts';
import type { AuditLog } from '../store/audit.ts';
import type { PreviewTokens } from './preview-tokens.ts';

/** Private-preview tokens handed to a sandbox's owner (or an admin), each grant in the audit log. */
export class PreviewGrants {
  private tokens: PreviewTokens;
  private audit: AuditLog;

  constructor(tokens: PreviewTokens, audit: AuditLog) {
    this.tokens = tokens;
    this.audit = audit;
  }

  /** A token opening `port` (every port when omitted) of this sandbox for `ttlS` seconds; answers the ports it opens. */
  grant(rec: SandboxRecord, ttlS: number, port: number | undefined, actor: Actor): { token: string; expiresAt: number; ports: number[] } {
    const { token, expiresAt } = this.tokens.mint(rec.id, rec.createdAt, ttlS, port);
    const ports = port !== undefined ? [port] : rec.ports;
    this.audit.record({ actor: actor.name, action: 'sandbox.preview_token', sandboxId: rec.id, requestId: actor.requestId, outcome: 'ok', detail: { ports, expires_at: expiresAt } });
    return { token, expiresAt, ports };
  }
}
