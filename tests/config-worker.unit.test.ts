import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, workerConfig } from '../src/config.ts';

describe('the config workers are sent', () => {
  it('holds no API token secret (from the variable or the tokens file) and no preview key, and leaves every other setting as it was', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sandboxd-config-'));
    try {
      const file = join(dir, 'tokens.json');
      writeFileSync(file, JSON.stringify([{ name: 'filed', secret: 'from-the-file-9c1d2e3f4a5b', admin: true, quotas: { sandboxes: 3 } }]));
      const secrets = ['alpha-secret-1b2c3d4e5f', 'bravo-secret-6a7b8c9d0e', 'from-the-file-9c1d2e3f4a5b', 'preview-key-ffeeddccbbaa99887766554433221100'];
      const config = loadConfig({
        SANDBOXD_API_AUTH_DISABLED: 'false', SANDBOXD_API_TOKENS: `a:${secrets[0]},b:${secrets[1]}:admin:sandboxes=2`,
        SANDBOXD_API_TOKENS_FILE: file, SANDBOXD_PREVIEW_SECRET: secrets[3], SANDBOXED_DATA_DIR: dir,
      });
      // The control: the full config does carry every one of them.
      for (const s of secrets) expect(JSON.stringify(config)).toContain(s);

      const view = workerConfig(config);
      const sent = JSON.stringify(structuredClone(view));
      for (const s of secrets) expect(sent).not.toContain(s);
      expect(view.tokens).toEqual([]);
      expect(view.previewSecret).toBeUndefined();
      expect({ ...view, tokens: config.tokens, previewSecret: config.previewSecret }).toEqual(config);
      // The daemon's own config is left whole: the API still authenticates with it.
      expect(config.tokens.map((t) => t.secret)).toEqual(secrets.slice(0, 3));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
