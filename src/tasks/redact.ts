/** Env names whose values are secrets: provider keys, tokens, passwords. */
const SECRET_NAME = /KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH/i;
/** Shorter values are too likely to be ordinary words to cut out of text. */
const MIN_SECRET_LENGTH = 8;

/**
 * A function that replaces the values of secret-looking env variables with `[redacted]` in every string
 * of a JSON-shaped value, so a key an agent echoes never reaches the event store, a log or a client.
 */
export function redactor(env: Record<string, string>): <T>(value: T) => T {
  const secrets = [...new Set(Object.entries(env)
    .filter(([name, value]) => SECRET_NAME.test(name) && value.length >= MIN_SECRET_LENGTH)
    .map(([, value]) => value))]
    .sort((a, b) => b.length - a.length);
  if (!secrets.length) return (v) => v;
  const clean = (text: string) => secrets.reduce((t, s) => (t.includes(s) ? t.split(s).join('[redacted]') : t), text);
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return clean(v);
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  return <T>(value: T): T => walk(value) as T;
}
