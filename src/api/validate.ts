import type { TSchema } from '@sinclair/typebox';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { AppError } from '../errors.ts';

const bodies = new Ajv({ strict: false, allErrors: false, validateFormats: false, verbose: true });
// Query strings arrive as text: numbers and booleans are coerced, and a lone value becomes a one-item array.
const queries = new Ajv({ strict: false, allErrors: false, validateFormats: false, coerceTypes: 'array', useDefaults: true, verbose: true });
const cache = new WeakMap<TSchema, ValidateFunction>();

/** Checks `value` against `schema`; throws invalid_request naming the offending field. */
export function validate<T>(schema: TSchema, value: unknown, where: 'body' | 'query'): T {
  let check = cache.get(schema);
  if (!check) {
    const { $id: _ignored, ...plain } = schema;
    check = (where === 'query' ? queries : bodies).compile(plain);
    cache.set(schema, check);
  }
  if (!check(value)) {
    const first = check.errors![0]!;
    const { path, message } = describe(first, where);
    throw new AppError('invalid_request', `${path}: ${message}`, { field: path });
  }
  return value as T;
}

function describe(e: ErrorObject, where: string): { path: string; message: string } {
  const base = where + e.instancePath.split('/').filter(Boolean).map((p) => (/^\d+$/.test(p) ? `[${p}]` : `.${p}`)).join('');
  const params = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = String(params.additionalProperty);
      const keyPatterns = Object.keys((e.parentSchema as { patternProperties?: object } | undefined)?.patternProperties ?? {});
      // A map (env, labels) names its key rule; an object with fixed fields calls the key unknown.
      return keyPatterns.length
        ? { path: `${base}.${key}`, message: `'${key}' is not an allowed key (keys must match ${keyPatterns.join(' or ')})` }
        : { path: `${base}.${key}`, message: 'unknown field' };
    }
    case 'required':
      return { path: `${base}.${String(params.missingProperty)}`, message: 'is required' };
    case 'uniqueItems':
      return { path: base, message: `must not contain duplicates (items ${String(params.j)} and ${String(params.i)} are equal)` };
    case 'pattern':
      return { path: base, message: `has an invalid format (must match ${String(params.pattern)})` };
    default:
      return { path: base, message: e.message ?? 'is invalid' };
  }
}
