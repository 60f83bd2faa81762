import { describe, expect, it } from 'vitest';
import { EventFeed, type EventSink } from '../../src/tasks/feed.ts';
import type { TaskEvent } from '../../src/model/task-events.ts';
import { prng } from '../support/prng.ts';

const event = (seq: number, type: 'message' | 'done' = 'message'): TaskEvent =>
  (type === 'done' ? { type, status: 'succeeded', seq, at: seq } : { type, role: 'assistant', text: `line ${seq}`, seq, at: seq }) as TaskEvent;

/** A task's committed events, the reads a feed makes of them, and what its client received. */
function harness(committed: number, since = 0) {
  const store: TaskEvent[] = Array.from({ length: committed }, (_, i) => event(i + 1));
  const reads: number[] = [];
  const sent: number[] = [];
  let closed: string | undefined;
  const sink: EventSink = {
    send: (e) => (sent.push(e.seq), true),
    drained: () => Promise.resolve(),
    close: (why) => void (closed = why),
  };
  const feed = new EventFeed({ since, page: 100, read: (after, limit) => (reads.push(after), store.filter((e) => e.seq > after).slice(0, limit)), sink });
  /** Commits an event, then posts it live, in that order (as the task worker does). */
  const commit = (type: 'message' | 'done' = 'message') => {
    const e = event(store.length + 1, type);
    store.push(e);
    feed.live(e);
  };
  /** Commits an event that is never posted live. */
  const commitUnposted = (type: 'message' | 'done' = 'message') => void store.push(event(store.length + 1, type));
  return { feed, reads, sent, commit, commitUnposted, closed: () => closed, committed: () => store.length };
}

/** Lets the feed's loop run until it waits again. */
const settle = () => new Promise((r) => setTimeout(r, 0));

describe('a task event feed', () => {
  it('replays what the store holds after Last-Event-ID, then sends live events once each, in order, without reading the store again', async () => {
    const h = harness(250, 10);
    const running = h.feed.run();
    await settle();
    expect(h.sent).toEqual(Array.from({ length: 240 }, (_, i) => i + 11));
    const replayReads = h.reads.length;
    expect(replayReads).toBe(4); // three pages, then the empty read that says it caught up
    for (let i = 0; i < 50; i++) {
      h.commit();
      if (i % 7 === 0) await settle();
    }
    h.commit('done');
    await running;
    expect(h.sent).toEqual(Array.from({ length: 291 }, (_, i) => i + 11));
    expect(h.reads.length).toBe(replayReads);
    expect(h.closed()).toBe('done');
  });

  it('reads back from the store, skipping nothing, when more live events come than it holds', async () => {
    const h = harness(0);
    const running = h.feed.run();
    await settle();
    expect(h.reads).toEqual([0]);
    // More than the hold (500) before the loop gets to run: the held ones are dropped and read back.
    for (let i = 0; i < 700; i++) h.commit();
    await settle();
    h.commit('done');
    await running;
    expect(h.sent).toEqual(Array.from({ length: 701 }, (_, i) => i + 1));
    expect(h.reads.length).toBeGreaterThan(1);
  });

  it('reads the store when a live event does not follow on from the last one sent (one was committed but never posted)', async () => {
    const h = harness(3);
    const running = h.feed.run();
    await settle();
    expect(h.sent).toEqual([1, 2, 3]);
    const before = h.reads.length;
    h.commitUnposted(); // 4
    h.commit(); // 5
    await settle();
    expect(h.sent).toEqual([1, 2, 3, 4, 5]);
    expect(h.reads.length).toBeGreaterThan(before);
    h.commit('done');
    await running;
    expect(h.sent).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it("reads the rest from the store, done included, when told the worker is gone (its last posts lost)", async () => {
    const h = harness(3);
    const running = h.feed.run();
    await settle();
    expect(h.sent).toEqual([1, 2, 3]);
    h.commitUnposted(); // 4
    h.commitUnposted('done'); // 5: committed, its post dropped with the worker's port
    await settle();
    expect(h.sent).toEqual([1, 2, 3]);
    h.feed.catchUp();
    await running;
    expect(h.sent).toEqual([1, 2, 3, 4, 5]);
    expect(h.closed()).toBe('done');
  });

  it('sends every event once and in order, then closes at done, over 150 generated runs of commits, lost posts, bursts past the hold, replays and worker ends', async () => {
    for (let seed = 1; seed <= 150; seed++) {
      const rand = prng(seed);
      const since = Math.floor(rand() * 5);
      const h = harness(Math.floor(rand() * 30), since);
      const running = h.feed.run();
      let unpostedSinceLast = false;
      for (let step = 0; step < 40; step++) {
        const r = rand();
        if (r < 0.45) {
          h.commit();
          unpostedSinceLast = false;
        } else if (r < 0.55) {
          h.commitUnposted();
          unpostedSinceLast = true;
        } else if (r < 0.6) {
          for (let i = 0; i < 520; i++) h.commit(); // past the 500 held events before the loop runs
          unpostedSinceLast = false;
        } else if (r < 0.65) {
          h.feed.catchUp();
          unpostedSinceLast = false;
        } else {
          await settle();
        }
      }
      // The end: done posted, or done lost with the worker (then it is told the worker is gone).
      if (rand() < 0.5 && !unpostedSinceLast) h.commit('done');
      else {
        h.commitUnposted('done');
        h.feed.catchUp();
      }
      await running;
      // Everything after Last-Event-ID, through done, once each and in order.
      expect(h.sent, `seed ${seed}`).toEqual(Array.from({ length: h.committed() - since }, (_, i) => since + 1 + i));
      expect(h.closed(), `seed ${seed}`).toBe('done');
    }
  });
});
