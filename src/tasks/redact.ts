/** Env names whose values are secrets: provider keys, tokens, passwords. */
const SECRET_NAME = /KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH/i;
/** Shorter values are too likely to be ordinary words to cut out of text. */
const MIN_SECRET_LENGTH = 8;
/** The most secrets one redactor cuts out (the longest kept): sandbox env (128) plus task env (128). */
export const MAX_SECRETS = 256;
/** The most bytes of secrets one redactor matches, so that building and running its pattern stays cheap. */
export const MAX_SECRET_BYTES = 256 << 10;

/** The secret values of an env, deduplicated, longest first, within MAX_SECRETS and MAX_SECRET_BYTES. */
export function secretValues(env: Record<string, string>): string[] {
  const all = [...new Set(Object.entries(env)
    .filter(([name, value]) => SECRET_NAME.test(name) && typeof value === 'string' && value.length >= MIN_SECRET_LENGTH)
    .map(([, value]) => value))]
    .sort((a, b) => b.length - a.length);
  const kept: string[] = [];
  let bytes = 0;
  // Longest first would let one huge value use up the budget: take the shortest that fit, then order them for the match.
  for (const s of [...all].reverse()) {
    if (kept.length >= MAX_SECRETS || bytes + s.length > MAX_SECRET_BYTES) break;
    kept.push(s);
    bytes += s.length;
  }
  return kept.sort((a, b) => b.length - a.length);
}

/**
 * A function that replaces the values of secret-looking env variables with `[redacted]` in every string
 * of a JSON-shaped value, so a key an agent echoes never reaches the event store, a log or a client.
 * Each string is scanned once for all secrets (one alternation, longest first so a secret containing
 * another is cut whole), so the cost grows with the text, not with text × number of secrets.
 */
export function redactor(env: Record<string, string>): <T>(value: T) => T {
  const secrets = secretValues(env);
  if (!secrets.length) return (v) => v;
  const pattern = new RegExp(secrets.map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'g');
  const clean = (text: string) => text.replace(pattern, '[redacted]');
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return clean(v);
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  return <T>(value: T): T => walk(value) as T;
}
