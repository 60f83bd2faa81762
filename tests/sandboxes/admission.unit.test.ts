import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { AppError } from '../../src/errors.ts';
import { Admission } from '../../src/sandboxes/admission.ts';

const P = { ...loadConfig({}).pressure, hardPct: 10, startFootprintMb: 256 };
const GiB = 1024 ** 3;
const dir = mkdtempSync(join(tmpdir(), 'sandboxed-admission-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The AppError a check throws, or undefined when it admits. */
function refusal(fn: () => void): AppError | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    if (err instanceof AppError) return err;
    throw err;
  }
}

describe('the admission gate on starts', () => {
  it('admits everything before the first pressure reading', () => {
    expect(refusal(() => new Admission(P).check('create', 1 << 20))).toBeUndefined();
  });

  it('refuses with capacity (503, retryable, Retry-After 10) while the pressure worker has closed admission, saying what and how much', () => {
    const a = new Admission(P);
    a.update({ admissionOpen: false, availablePct: 7.25, totalBytes: 16 * GiB, availableBytes: 1.16 * GiB });
    const err = refusal(() => a.check('wake this sandbox', 64));
    expect(err).toMatchObject({ code: 'capacity', status: 503, retryable: true, retryAfterS: 10 });
    expect(err!.message).toBe('the server is short of memory (7.3% available): cannot wake this sandbox now; retry shortly');
  });

  it('refuses a start whose expected footprint (its memory, at most the start footprint) would take availability under the hard level', () => {
    const a = new Admission(P);
    // A 10 GiB host with 1.25 GiB available: a start's footprint is capped at 256 MiB, leaving exactly the 10% floor.
    a.update({ admissionOpen: true, availablePct: 12.5, totalBytes: 10 * GiB, availableBytes: 1.25 * GiB });
    expect(refusal(() => a.check('create', 8192))).toBeUndefined();
    a.update({ admissionOpen: true, availablePct: 12, totalBytes: 10 * GiB, availableBytes: 1.2 * GiB });
    const err = refusal(() => a.check('create', 8192));
    expect(err).toMatchObject({ code: 'capacity', retryAfterS: 10 });
    expect(err!.message).toBe('starting this sandbox would leave 9.5% of memory available, under the 10% floor: cannot create now; retry shortly');
    // A small sandbox's own limit is its footprint: 64 MiB fits where 256 does not.
    expect(refusal(() => a.check('create', 64))).toBeUndefined();
  });

  it('refuses while the data disk is under its free-space watermark, naming the directory and SANDBOXD_MIN_FREE_MB, before looking at memory', () => {
    const a = new Admission(P, { dir, minFreeBytes: Number.MAX_SAFE_INTEGER });
    const err = refusal(() => a.check('create', 64));
    expect(err).toMatchObject({ code: 'capacity', details: { data_dir: dir } });
    expect(err!.message).toContain(`free in ${dir}, below the`);
    expect(err!.message).toContain('SANDBOXD_MIN_FREE_MB');
    expect(typeof (err!.details as { free_bytes: unknown }).free_bytes).toBe('number');
    expect(err!.retryAfterS).toBeGreaterThan(0);
  });

  it('admits when the disk has room or the watermark is off, and does not refuse when statfs itself fails', () => {
    expect(refusal(() => new Admission(P, { dir, minFreeBytes: 1 }).check('create', 64))).toBeUndefined();
    expect(refusal(() => new Admission(P, { dir, minFreeBytes: 0 }).check('create', 64))).toBeUndefined();
    expect(refusal(() => new Admission(P, { dir: join(dir, 'missing', 'dir'), minFreeBytes: Number.MAX_SAFE_INTEGER }).check('create', 64))).toBeUndefined();
  });
});
