import { readFileSync } from 'node:fs';
import type { ApiToken, Quotas } from './config.ts';

/** The quota keys a token may set, as written in SANDBOXD_API_TOKENS and the tokens file. */
const QUOTA_KEYS = { sandboxes: 'sandboxes', running: 'running', memory_mb: 'memoryMb', disk_mb: 'diskMb', always_on: 'alwaysOn' } as const;
/** The largest quota value accepted (about a billion: beyond any real holding). */
export const QUOTA_MAX = 1 << 30;

/** A quota value: a whole number from 0, or `unlimited` (null in JSON); undefined when it is neither. */
export function quotaValue(v: unknown): number | null | undefined {
  if (v === null || v === 'unlimited') return null;
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= QUOTA_MAX ? n : undefined;
}

/** Checks one token and adds it, or records why not; `where` names the variable and entry. */
function addToken(tokens: ApiToken[], t: ApiToken, where: string, problems: string[]): void {
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(t.name)) return void problems.push(`${where}: the name must be 1-64 letters, digits, . _ -`);
  if (t.secret.length < 8) return void problems.push(`${where} ('${t.name}'): the secret must be at least 8 characters`);
  if (tokens.some((o) => o.secret === t.secret)) return void problems.push(`${where} ('${t.name}'): the secret is already used by another token`);
  // A tenant is its name: two tokens of one tenant with different quotas would make its limit depend on the token.
  const twin = tokens.find((o) => o.name === t.name && (o.quotas || t.quotas));
  if (twin && JSON.stringify(twin.quotas ?? {}) !== JSON.stringify(t.quotas ?? {})) {
    return void problems.push(`${where} ('${t.name}'): another token of tenant '${t.name}' sets different quotas; give every token of a tenant the same quotas`);
  }
  tokens.push(t);
}

/** Accepts `name:secret[:admin][:quota=N...]` (quota: sandboxes, running, memory_mb, disk_mb, always_on) and `name=secret`, comma separated. */
export function parseTokens(raw: string, problems: string[]): ApiToken[] {
  const tokens: ApiToken[] = [];
  const entries = raw.split(',').map((s) => s.trim()).filter(Boolean);
  entries.forEach((entry, i) => {
    const eq = /^([^:=]+)=(.+)$/.exec(entry);
    const [name = '', secret = '', ...flags] = eq ? [eq[1]!, eq[2]!] : entry.split(':');
    const where = `SANDBOXD_API_TOKENS: entry ${i + 1}`;
    const quotas: Partial<Quotas> = {};
    let admin = false;
    for (const flag of flags) {
      const m = /^([a-z_]+)=(.*)$/.exec(flag);
      const key = m && Object.hasOwn(QUOTA_KEYS, m[1]!) ? QUOTA_KEYS[m[1] as keyof typeof QUOTA_KEYS] : undefined;
      const value = m ? quotaValue(m[2]) : undefined;
      if (flag === 'admin') admin = true;
      else if (key && value !== undefined) quotas[key] = value;
      else return void problems.push(`${where}: expected name:secret, then optionally :admin and :quota=N (quota: ${Object.keys(QUOTA_KEYS).join(', ')}; N a whole number or unlimited), got '${flag}'`);
    }
    addToken(tokens, { name, secret, admin, ...(Object.keys(quotas).length ? { quotas } : {}) }, where, problems);
  });
  return tokens;
}

/** Adds the tokens of SANDBOXD_API_TOKENS_FILE: JSON, `[{name, secret, admin?, quotas?: {sandboxes, running, memory_mb, disk_mb, always_on}}]`. */
export function readTokensFile(path: string | undefined, tokens: ApiToken[], problems: string[]): void {
  if (!path) return;
  let list: unknown;
  try {
    list = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    return void problems.push(`SANDBOXD_API_TOKENS_FILE: cannot read '${path}' as JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  if (!Array.isArray(list)) return void problems.push('SANDBOXD_API_TOKENS_FILE: expected a JSON array of {name, secret, admin?, quotas?}');
  list.forEach((item: unknown, i) => {
    const where = `SANDBOXD_API_TOKENS_FILE: entry ${i + 1}`;
    const t = (item ?? {}) as { name?: unknown; secret?: unknown; admin?: unknown; quotas?: unknown };
    if (typeof item !== 'object' || typeof t.name !== 'string' || typeof t.secret !== 'string' || !['boolean', 'undefined'].includes(typeof t.admin)) {
      return void problems.push(`${where}: expected {"name": string, "secret": string, "admin"?: boolean, "quotas"?: {...}}`);
    }
    const quotas: Partial<Quotas> = {};
    for (const [k, v] of Object.entries((t.quotas ?? {}) as Record<string, unknown>)) {
      const value = quotaValue(v);
      if (!Object.hasOwn(QUOTA_KEYS, k) || value === undefined) {
        return void problems.push(`${where}: quotas.${k}: expected one of ${Object.keys(QUOTA_KEYS).join(', ')} with a whole number or null (unlimited)`);
      }
      quotas[QUOTA_KEYS[k as keyof typeof QUOTA_KEYS]] = value;
    }
    addToken(tokens, { name: t.name, secret: t.secret, admin: t.admin === true, ...(t.quotas !== undefined ? { quotas } : {}) }, where, problems);
  });
}
