import type { TaskEventBody } from '../../model/task-events.ts';

/** A JSON object as an agent printed it: every field is checked before use. */
export type Json = Record<string, unknown>;

/** One output line as a JSON object, or undefined for anything else (banners, partial lines, arrays). */
export function parseLine(text: string): Json | undefined {
  if (!text.trim().startsWith('{')) return undefined;
  try {
    const v: unknown = JSON.parse(text);
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined;
  } catch {
    return undefined;
  }
}

/** The value if it is a JSON object, else an empty one. */
export const obj = (v: unknown): Json => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {});
/** The value if it is a finite number, else 0. */
export const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
/** The value if it is a string. */
export const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** The file a tool call is about, whatever the agent names the argument. */
export function pathOf(input: Json): string | undefined {
  return str(input.file_path) ?? str(input.filePath) ?? str(input.path) ?? str(input.notebook_path);
}

/** A normalised tool event, with the path only when there is one. */
export function toolEvent(name: string, status: 'started' | 'completed' | 'error', path: string | undefined): TaskEventBody {
  return { type: 'tool', name, status, ...(path ? { path } : {}) };
}
