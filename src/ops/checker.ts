/**
 * When a realserver's check runs: the first check after a warm-up (keepalived's warmup: a random
 * delay of up to that much, so many checks do not start together), then one every interval; after
 * a failure of an up realserver the retries come `delay-before-retry` after the failed check
 * ended (keepalived's retry / delay_before_retry) until `fall` failures in a row take it down, and
 * from then on every interval again. The loop never overlaps two checks of one realserver.
 */
import type { ProbeResult } from './probes.js';
import type { CheckSpec, Target } from './spec.js';
import type { HealthState } from './health.js';

/** What the health model says after a result: enough to tell a retry from a routine check. */
export interface AfterResult { state: HealthState; failRun: number }

/** Delay before the first check: the warm-up if set, else spread over min(interval, 1 s). */
export function firstDelayMs(spec: Pick<CheckSpec, 'warmupMs' | 'intervalMs'>, random: () => number = Math.random): number {
  const spread = spec.warmupMs ?? Math.min(spec.intervalMs, 1000);
  return Math.floor(random() * spread);
}

/**
 * Delay from the end of a check (that took `tookMs`) to the next: a retry after a failure of a
 * realserver that is still up, else the rest of the interval.
 */
export function nextDelayMs(spec: Pick<CheckSpec, 'intervalMs' | 'delayBeforeRetryMs'>, ok: boolean, after: AfterResult | undefined, tookMs: number): number {
  if (!ok && spec.delayBeforeRetryMs !== undefined && after?.state === 'up' && after.failRun > 0) return spec.delayBeforeRetryMs;
  return Math.max(0, spec.intervalMs - tookMs);
}

/** The check loop of one realserver. */
export class CheckLoop {
  private timer?: NodeJS.Timeout;
  private stopped = false;

  constructor(
    readonly target: Target,
    private readonly probe: (t: Target) => Promise<ProbeResult>,
    /** Takes the result into the health model; returns the realserver's state after it. */
    private readonly onResult: (t: Target, r: ProbeResult) => AfterResult | undefined,
    private readonly random: () => number = Math.random,
  ) {}

  start(): this {
    this.schedule(firstDelayMs(this.target.spec, this.random));
    return this;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  get running(): boolean {
    return !this.stopped;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick(), ms);
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    const started = Date.now();
    const r = await this.probe(this.target);
    if (this.stopped) return;
    const after = this.onResult(this.target, r);
    this.schedule(nextDelayMs(this.target.spec, r.ok, after, Date.now() - started));
  }
}
