import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { admissionAfter, bandOf, pickVictims, STOPS_PER_PASS } from '../../src/sandboxes/pressure.ts';

const P = loadConfig({}).pressure; // soft 15, hard 10, emergency 5, resume 12

describe('memory pressure rules', () => {
  it('puts availability in bands at the configured levels, each boundary belonging to the milder band', () => {
    expect([20, 15, 14.9, 10, 9.9, 5, 4.9, 0].map((pct) => bandOf(pct, P))).toEqual(['normal', 'normal', 'soft', 'soft', 'hard', 'hard', 'emergency', 'emergency']);
    expect(STOPS_PER_PASS).toEqual({ normal: 0, soft: 1, hard: 3, emergency: 1 });
  });

  it('closes admission under the hard level and reopens it only at the resume level (hysteresis)', () => {
    let open = true;
    const trace = [50, 10, 9.9, 11, 11.9, 12, 10.5, 9].map((pct) => (open = admissionAfter(open, pct, P)));
    expect(trace).toEqual([true, true, false, false, false, true, true, false]);
  });

  it('picks victims from the tenant holding the most memory, always_on counted but never picked, ties by name', () => {
    const sb = (id: string, owner: string, mb: number, pinned = false, active = 0) => ({ id, owner, mb, pinned, active });
    const running = [
      sb('a1', 'alice', 1000, false, 5), sb('a2', 'alice', 1000, false, 1), sb('b1', 'bob', 500, false, 0), sb('b-pinned', 'bob', 4000, true),
      sb('c1', 'carol', 1500, false, 0), sb('d1', 'dave', 1500, false, 9),
    ];
    const order = pickVictims(running, (r) => r.mb, (r) => !r.pinned, (a, b) => a.active - b.active).map((r) => r.id);
    // bob holds 4500 (4000 pinned): his one eligible sandbox goes first; then alice (2000, least recent first),
    // then carol and dave tie at 1500 with alice's remaining 1000 below: carol by name, dave, alice.
    expect(order).toEqual(['b1', 'a2', 'c1', 'd1', 'a1']);
    expect(pickVictims([], () => 1, () => true, () => 0)).toEqual([]);
    expect(pickVictims(running.filter((r) => r.pinned), (r) => r.mb, (r) => !r.pinned, () => 0)).toEqual([]);
  });
});
