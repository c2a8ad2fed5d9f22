/** What the active/active tests share (test/e2e/ecmp*.test.ts): long-lived connections and their checks. */
import assert from 'node:assert/strict';
import { streamReport, type HaLab, type HaStream, type HaDirector } from '../../src/lab/ha.js';
import { waitFor, sleep } from '../../src/lab/index.js';

/** 8 streams per VIP, one per client address; resolves once every stream has lines. */
export async function streamsThrough(lab: HaLab): Promise<HaStream[]> {
  const streams = lab.services.flatMap((s) => (s.vip.includes(':') ? lab.client.v6s : lab.client.v4s).map((src) => lab.stream(s.vip, src, 90, 50)));
  await waitFor('every stream flowing', () => streams.every((s) => s.lines.length >= 4), 20_000, 50);
  return streams;
}

/** After an event at `since`: every stream still flowing, none broken (the report is printed). */
export async function unbroken(what: string, streams: HaStream[], since: number, times: Record<string, number | number[]>): Promise<void> {
  const counts = streams.map((s) => s.lines.length);
  // Long enough for TCP to have retransmitted through a new path (RTO backoff after a dead path).
  await waitFor(`${what}: every stream flowing again`, () => streams.every((s, i) => s.code !== undefined || s.lines.length >= counts[i]! + 10), 20_000, 100);
  const r = streamReport(streams, since, Date.now());
  console.log(`${what}: ${JSON.stringify(r)}`);
  times[`${what}.maxGapMs`] = r.maxGapMs;
  assert.deepEqual(r.broken, [], `${what}: connections broken`);
  assert.equal(r.changed, 0, `${what}: a connection moved to another realserver`);
  assert.equal(r.stalled, 0, `${what}: connections stalled`);
}

export function closeStreams(streams: HaStream[]): void {
  for (const s of streams) s.kill();
}

/** Packets the director forwards during `ms` (the connections really go through it). */
export async function forwardedDuring(lab: HaLab, x: HaDirector, ms = 1000): Promise<number> {
  const a = await lab.forwarded(x);
  await sleep(ms);
  return (await lab.forwarded(x)) - a;
}
