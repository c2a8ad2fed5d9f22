/**
 * Where a restarted `run` takes its health state from (pure): the last run's
 * <state dir>/ops-health.json, else the running director's snapshot (a checked realserver that
 * the last applied configuration had removed or at weight 0, without a manual drain, was down).
 * Older than `maxAgeMs`, the last state says too little: each check's `initial` holds instead.
 */
import { serviceId, type DirectorConfig } from '../model/types.js';
import { drainOf, type Drains } from '../director/drain.js';
import type { SeedState } from './health.js';
import type { Target } from './spec.js';

export interface HealthFileDoc {
  pid: number;
  file: string;
  updatedAt: string;
  /** Set when that run stopped (the file stays for the next one). */
  stoppedAt?: string;
  realservers: { service: string; address: string; state: string; since?: string }[];
}

export interface Seed {
  from: 'health file' | 'snapshot';
  /** ms between the last known state and now. */
  ageMs: number;
  states: SeedState[];
  /** Older than the bound: not used. */
  stale: boolean;
}

export function seedFromHealthFile(doc: HealthFileDoc, targets: readonly Target[], now: number, maxAgeMs: number): Seed | undefined {
  const at = Date.parse(doc.stoppedAt ?? doc.updatedAt);
  if (!Number.isFinite(at)) return undefined;
  const ageMs = Math.max(0, now - at);
  const keys = new Set(targets.map((t) => t.key));
  const states: SeedState[] = [];
  for (const r of doc.realservers) {
    const key = `${r.service}/${r.address}`;
    if (!keys.has(key) || (r.state !== 'up' && r.state !== 'down')) continue;
    const since = r.since ? Date.parse(r.since) : at;
    states.push({ key, state: r.state, since: Number.isFinite(since) ? since : at });
  }
  return { from: 'health file', ageMs, states, stale: ageMs > maxAgeMs };
}

/**
 * From the snapshot: `applied` is what the last run (or anyone) applied. A checked realserver
 * with a weight in the file is down when the applied configuration removed it or gave it weight
 * 0 without a drain; else up. No applied service of that id: nothing is known.
 */
export function seedFromSnapshot(
  file: DirectorConfig, applied: DirectorConfig, drains: Drains | undefined, targets: readonly Target[], updatedAt: string, now: number, maxAgeMs: number,
): Seed | undefined {
  const at = Date.parse(updatedAt);
  if (!Number.isFinite(at)) return undefined;
  const ageMs = Math.max(0, now - at);
  const keys = new Set(targets.map((t) => t.key));
  const states: SeedState[] = [];
  for (const svc of file.services) {
    const running = applied.services.find((x) => serviceId(x) === serviceId(svc));
    if (!running) continue;
    for (const r of svc.realservers) {
      const key = `${serviceId(svc)}/${r.address}`;
      if (!keys.has(key) || r.weight === 0 || drainOf(drains, svc, r.address)) continue;
      const a = running.realservers.find((x) => x.address === r.address);
      states.push({ key, state: !a || a.weight === 0 ? 'down' : 'up', since: at });
    }
  }
  return { from: 'snapshot', ageMs, states, stale: ageMs > maxAgeMs };
}
