import { monotonicFactory } from 'ulid';

const ULID_RE = /^[0-9A-HJKMNP-TV-Z]{26}$/;
const NAME_RE = /^[a-z0-9-]{1,63}$/;
const nextUlid = monotonicFactory();

/** A new sandbox id: a ULID, canonical uppercase. */
export function newId(): string {
  return nextUlid();
}

/** The canonical (uppercase) form of a ULID given in any case, or undefined when it is not one. */
export function normaliseId(value: string): string | undefined {
  const upper = value.toUpperCase();
  return ULID_RE.test(upper) ? upper : undefined;
}

/** True for a valid client-chosen name that cannot be mistaken for an id. */
export function isValidName(value: string): boolean {
  return NAME_RE.test(value) && normaliseId(value) === undefined;
}

/** How a path segment identifies a sandbox: by id, by name, or not at all. */
export function parseRef(value: string): { id: string } | { name: string } | undefined {
  const id = normaliseId(value);
  if (id) return { id };
  const lower = value.toLowerCase();
  return NAME_RE.test(lower) ? { name: lower } : undefined;
}
