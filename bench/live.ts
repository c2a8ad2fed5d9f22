/**
 * Live packet rate: frames injected with BPF_PROG_TEST_RUN live-frames mode into veth pairs whose
 * receiving end runs the program under test in native XDP mode, in generic (skb) mode, or no
 * program and the kernel's forwarding with nftables DNAT; packets per second that come back
 * (XDP_TX, or forwarded) to the sending end, counted there. Runs in a network namespace of its own
 * (lvsb-live-<pid>), removed afterwards also on failure. Everything runs on the CPU that makes
 * the BPF_PROG_TEST_RUN call: generator, both veth hops and both XDP programs.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { median } from './lib/stats.js';
import type { LiveMode, LiveSample } from './live-child.js';

export interface LiveResult {
  name: string; mode: LiveMode; floor?: string;
  /** Another case in the same run (the generic director against nftables DNAT): rate ratio. */
  against?: string; ratioAgainst?: number; ratioAgainstMin?: number; ratioAgainstMax?: number;
  mpps: number; mppsMin: number; mppsMax: number;
  ratio?: number; ratioMin?: number; ratioMax?: number; target?: number;
  lossPct: number;
}

export async function runLiveBench(opts: { rounds: number; frames: number; batch?: number; only?: string }): Promise<{ results: LiveResult[]; director: Record<string, string> }> {
  const ns = `lvsb-live-${process.pid}`;
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    const child = fileURLToPath(new URL('./live-child.js', import.meta.url));
    const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, child, JSON.stringify({ rounds: opts.rounds, frames: opts.frames, batch: opts.batch ?? 64, ...(opts.only ? { only: opts.only } : {}) })], { encoding: 'utf8', timeout: 600_000 });
    if (r.status !== 0) throw new Error(`live bench failed (${r.status ?? r.signal}): ${r.stderr.slice(-2000)}`);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { samples: LiveSample[]; director: Record<string, string> };
    const rate = (s: LiveSample, i: number) => (s.action === 'drop' ? s.sent[i]! : s.counted[i]!) / s.seconds[i]! / 1e6;
    const results = out.samples.map((s): LiveResult => {
      const rates = s.counted.map((_, i) => rate(s, i));
      const res: LiveResult = {
        name: s.name, mode: s.mode ?? 'native', floor: s.floor, mpps: median(rates), mppsMin: Math.min(...rates), mppsMax: Math.max(...rates),
        lossPct: s.action === 'drop' ? 0 : 100 * (1 - s.counted.reduce((a, b) => a + b, 0) / s.sent.reduce((a, b) => a + b, 0)),
      };
      if (s.floor) {
        const f = out.samples.find((x) => x.name === s.floor)!;
        const ratios = rates.map((x, i) => x / rate(f, i));
        Object.assign(res, { ratio: median(ratios), ratioMin: Math.min(...ratios), ratioMax: Math.max(...ratios), target: 0.9 });
      }
      if (s.against) {
        const a = out.samples.find((x) => x.name === s.against)!;
        const ratios = rates.map((x, i) => x / rate(a, i));
        Object.assign(res, { against: s.against, ratioAgainst: median(ratios), ratioAgainstMin: Math.min(...ratios), ratioAgainstMax: Math.max(...ratios) });
      }
      return res;
    });
    return { results, director: out.director };
  } finally {
    spawnSync('ip', ['netns', 'del', ns]);
  }
}
