import { normaliseId } from '../ids.ts';

/** Which sandbox and port a preview Host header names, e.g. `s-01j…-3000.preview.example.com:8080`, in any letter case. */
export function parsePreviewHost(host: string | undefined, previewDomain: string): { sandboxId: string; port: number } | undefined {
  if (!host) return undefined;
  const name = host.toLowerCase().replace(/:\d+$/, '').replace(/\.$/, '');
  const suffix = `.preview.${previewDomain}`;
  if (!name.endsWith(suffix)) return undefined;
  const m = /^s-([0-9a-z]{26})-(\d{1,5})$/.exec(name.slice(0, -suffix.length));
  if (!m) return undefined;
  const sandboxId = normaliseId(m[1]!);
  const port = Number(m[2]);
  if (!sandboxId || port < 1 || port > 65535) return undefined;
  return { sandboxId, port };
}
