/** Longest request target either listener accepts; the header size limit bounds it too, this bounds the parse. */
const MAX_TARGET = 16_384;

/**
 * The request target as a URL, or undefined when it is neither origin-form (`/path?query`) nor absolute-form
 * (`http://host/path`, RFC 9112 §3.2). Never throws: a target is attacker input.
 */
export function parseTarget(raw: string | undefined): URL | undefined {
  if (!raw || raw.length > MAX_TARGET) return undefined;
  try {
    // Concatenated rather than resolved against a base, so `//x/y` stays the path `//x/y` and never names a host.
    if (raw.startsWith('/')) return new URL(`http://target${raw}`);
    if (/^https?:\/\//i.test(raw)) return new URL(raw);
  } catch {
    // fall through: not a URL
  }
  return undefined;
}

/** Percent-decoding that answers undefined for malformed input instead of throwing. */
export function decodeComponent(value: string): string | undefined {
  try {
    return decodeURIComponent(value);
  } catch {
    return undefined;
  }
}
