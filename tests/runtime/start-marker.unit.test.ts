import { describe, expect, it } from 'vitest';
import { EXEC_BAD_CWD, EXEC_STARTED } from '../../src/runtime/sandbox-scripts.ts';
import { StartMarker } from '../../src/runtime/start-marker.ts';

const feedAll = (chunks: (string | Buffer)[]) => {
  const m = new StartMarker();
  return chunks.map((c) => {
    const r = m.feed(Buffer.isBuffer(c) ? c : Buffer.from(c, 'latin1'));
    return [r.state, r.rest.toString('latin1')];
  });
};

describe('the exec start marker', () => {
  it('settles started on the marker and hands on the command bytes that came with it', () => {
    expect(feedAll([`${EXEC_STARTED}hello`, ' world'])).toEqual([['started', 'hello'], ['started', ' world']]);
    expect(feedAll([EXEC_STARTED])).toEqual([['started', '']]);
  });

  it('waits for a marker split across reads, one byte at a time', () => {
    const bytes = [...`${EXEC_STARTED}x`];
    const out = feedAll(bytes);
    expect(out.slice(0, EXEC_STARTED.length - 1).every(([state]) => state === 'pending')).toBe(true);
    expect(out[EXEC_STARTED.length - 1]).toEqual(['started', '']);
    expect(out[EXEC_STARTED.length]).toEqual(['started', 'x']);
  });

  it('settles bad_cwd on the other marker, split or whole, and keeps nothing after it', () => {
    expect(feedAll([EXEC_BAD_CWD])).toEqual([['bad_cwd', '']]);
    expect(feedAll([EXEC_BAD_CWD.slice(0, 5), EXEC_BAD_CWD.slice(5)])).toEqual([['pending', ''], ['bad_cwd', '']]);
  });

  it('passes bytes that are not a marker on whole, as the command\'s (an image whose sh prints first)', () => {
    expect(feedAll(['plain output'])).toEqual([['started', 'plain output']]);
    expect(feedAll(['\x1esandboxd:', 'nope, something else'])).toEqual([['pending', ''], ['started', '\x1esandboxd:nope, something else']]);
    expect(feedAll([Buffer.from([0xff, 0x00, 0x1e])])).toEqual([['started', '\xff\x00\x1e']]);
  });

  it('counts the command\'s own lookalike of a marker after the real one as output', () => {
    expect(feedAll([EXEC_STARTED, EXEC_BAD_CWD])).toEqual([['started', ''], ['started', EXEC_BAD_CWD]]);
  });
});
