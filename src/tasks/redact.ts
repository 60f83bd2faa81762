/** Env names whose values are secrets: provider keys, tokens, passwords. */
const SECRET_NAME = /KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH/i;
/** Shorter values are too likely to be ordinary words to cut out of text. */
const MIN_SECRET_LENGTH = 8;

/**
 * A function that replaces the values of secret-looking env variables with `[redacted]` anywhere in a
 * JSON-shaped value, so a key an agent echoes never reaches the event store, a log or a client.
 */
export function redactor(env: Record<string, string>): <T>(value: T) => T {
  const secrets = Object.entries(env)
    .filter(([name, value]) => SECRET_NAME.test(name) && value.length >= MIN_SECRET_LENGTH)
    .map(([, value]) => JSON.stringify(value).slice(1, -1))
    .sort((a, b) => b.length - a.length);
  if (!secrets.length) return (v) => v;
  return <T>(value: T): T => {
    let text = JSON.stringify(value);
    let hit = false;
    for (const s of secrets) {
      if (!text.includes(s)) continue;
      hit = true;
      text = text.split(s).join('[redacted]');
    }
    return hit ? (JSON.parse(text) as T) : value;
  };
}
