import { describe, expect, it } from 'vitest';
import { isValidName, newId, normaliseId, parseRef } from '../src/ids.ts';

describe('sandbox ids and names', () => {
  it('makes canonical uppercase ULIDs that sort in creation order, even within one millisecond', () => {
    const ids = Array.from({ length: 1000 }, () => newId());
    for (const id of ids) expect(id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('accepts an id in any case, answering its canonical form, and refuses anything else', () => {
    const id = newId();
    expect(normaliseId(id.toLowerCase())).toBe(id);
    expect(normaliseId(id)).toBe(id);
    for (const bad of ['', id.slice(1), `${id}0`, `${id.slice(0, -1)}U`, `${id.slice(0, -1)}I`, `${id.slice(0, -1)}-`, ` ${id.slice(1)}`, `${id.slice(0, -1)}\u0000`, id.replace(/./, 'ı')]) {
      expect(normaliseId(bad), JSON.stringify(bad)).toBeUndefined();
    }
  });

  it('accepts names of 1-63 lowercase letters, digits and dashes that cannot be mistaken for an id', () => {
    for (const name of ['a', 'my-app', '0', 'x'.repeat(63), '-']) expect(isValidName(name), name).toBe(true);
    for (const name of ['', 'x'.repeat(64), 'My-App', 'a_b', 'a.b', 'a/b', 'é', 'a b', 'a\u0000', newId().toLowerCase()]) expect(isValidName(name), name).toBe(false);
  });

  it('reads a path segment as an id first, then as a name (lowercased), else nothing', () => {
    const id = newId();
    expect(parseRef(id.toLowerCase())).toEqual({ id });
    expect(parseRef('My-App')).toEqual({ name: 'my-app' });
    for (const bad of ['', 'a/b', 'owner%2Fname', '😀', 'x'.repeat(64)]) expect(parseRef(bad), bad).toBeUndefined();
  });
});
