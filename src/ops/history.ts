/**
 * The last minutes of packets/s and new connections/s per realserver, for the status page's
 * sparklines: `run` pushes one stats view every `intervalMs`; each realserver keeps at most
 * `capacity` samples (a bounded ring), and one that leaves the configuration leaves the history.
 * Pure: no timers, no reads of the data plane.
 */
import type { StatsView } from '../view/stats.js';

export interface RateSeries { pps: number[]; cps: number[] }

/**
 * Above this many realservers the status document and page carry no history: two sparklines per
 * realserver, redrawn every second, would make the page tens of megabytes a second (10,000
 * realservers: 20 MB of HTML, 18 MB of JSON); Prometheus graphs directors of that size.
 */
export const HISTORY_MAX_REALSERVERS = 500;

/** "serviceId/address", the key of a realserver in the status document. */
export const historyKey = (service: string, address: string): string => `${service}/${address}`;

class Ring {
  private readonly buf: number[] = [];
  private start = 0;
  constructor(private readonly capacity: number) {}
  push(v: number): void {
    if (this.buf.length < this.capacity) this.buf.push(v);
    else {
      this.buf[this.start] = v;
      this.start = (this.start + 1) % this.capacity;
    }
  }
  /** Oldest first. */
  values(): number[] {
    return [...this.buf.slice(this.start), ...this.buf.slice(0, this.start)];
  }
}

export class RateHistory {
  private readonly rings = new Map<string, { pps: Ring; cps: Ring }>();

  constructor(readonly intervalMs: number, readonly capacity: number) {
    if (!(capacity >= 1)) throw new RangeError(`history capacity ${capacity}`);
  }

  /** One sample per realserver in `v` (its rates against the previous reading). */
  push(v: StatsView): void {
    const seen = new Set<string>();
    for (const s of v.services) {
      for (const r of s.realservers) {
        const k = historyKey(s.id, r.address);
        seen.add(k);
        let ring = this.rings.get(k);
        if (!ring) {
          ring = { pps: new Ring(this.capacity), cps: new Ring(this.capacity) };
          this.rings.set(k, ring);
        }
        // One decimal is all a sparkline shows; it keeps /api/status short.
        ring.pps.push(Math.round(r.rates.pps * 10) / 10);
        ring.cps.push(Math.round(r.rates.cps * 10) / 10);
      }
    }
    for (const k of [...this.rings.keys()]) if (!seen.has(k)) this.rings.delete(k);
  }

  series(key: string): RateSeries | undefined {
    const r = this.rings.get(key);
    return r && { pps: r.pps.values(), cps: r.cps.values() };
  }
}
