/**
 * The control plane's cost as an operator meets it (issue 16's targets): start-up, one
 * ipvsadm-style change at 10 and at 1,000 services through the CLI and through the library, and
 * the CLI's peak resident memory while restoring 1,000 services. bench/cli-child.ts runs in a
 * network namespace of its own (lvsb-cli-<pid>), entered with nsenter --net so the host's bpffs
 * is used; the namespace is removed afterwards. Every ratio is a median of per-round ratios, each
 * round measuring its own `node -e 0` (the floor) and both sizes one after the other.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { median } from './lib/stats.js';
import type { CliChildOpts } from './cli-child.js';

export interface CliRow { name: string; ms?: { median: number; min: number; max: number }; ratio?: { median: number; min: number; max: number; of: string }; target?: string; met?: boolean; note?: string }
export interface CliBench { config: CliChildOpts; rows: CliRow[]; restores: { services: number; reals: number; ms: number; peakRssKiB: number }[] }

const stat = (xs: number[]) => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs) });
const per = (a: number[], b: number[]) => a.map((x, i) => x / b[i]!);

export function runCliBench(opts: Partial<CliChildOpts> = {}): CliBench {
  const o: CliChildOpts = { rounds: opts.rounds ?? 9, small: opts.small ?? 10, large: opts.large ?? 1000, reals: opts.reals ?? 4 };
  const ns = `lvsb-cli-${process.pid}`;
  execFileSync('ip', ['netns', 'add', ns]);
  let out: { rounds: Record<string, number[]>; restores: CliBench['restores'] };
  try {
    const child = fileURLToPath(new URL('./cli-child.js', import.meta.url));
    const r = spawnSync('nsenter', [`--net=/run/netns/${ns}`, process.execPath, child, JSON.stringify(o)], { encoding: 'utf8', timeout: 1_800_000 });
    if (r.status !== 0) throw new Error(`control-plane CLI bench failed (${r.status ?? r.signal}): ${r.stderr.slice(-2000)}`);
    out = JSON.parse(r.stdout.trim().split('\n').pop()!) as typeof out;
  } finally {
    spawnSync('ip', ['netns', 'del', ns]);
  }
  const R = out.rounds as Record<'node' | 'version' | 'cliSmall' | 'cliLarge' | 'libSmall' | 'libLarge', number[]>;
  const row = (name: string, ms: number[], ratios: number[], of: string, target: number, note?: string): CliRow => {
    const ratio = { ...stat(ratios), of };
    return { name, ms: stat(ms), ratio, target: `<= ${target}x`, met: ratio.median <= target, ...(note ? { note } : {}) };
  };
  const large = out.restores.find((x) => x.services === o.large)!;
  const rows: CliRow[] = [
    { name: '`node -e 0` (the floor)', ms: stat(R.node) },
    row('`lvs-xdp --version`', R.version, per(R.version, R.node), '`node -e 0`', 1.5),
    row(`one \`-e\` (a realserver's weight), ${o.small} services (CLI)`, R.cliSmall, per(R.cliSmall, R.node), '`node -e 0`', 2.5),
    row(`the same at ${o.large} services (CLI)`, R.cliLarge, per(R.cliLarge, R.cliSmall), `the CLI at ${o.small}`, 1.5),
    { name: `the same change through the library (Director.run), ${o.small} services`, ms: stat(R.libSmall) },
    row(`the same at ${o.large} services (library)`, R.libLarge, per(R.libLarge, R.libSmall), `the library at ${o.small}`, 1.5),
    {
      name: `CLI peak resident memory, \`-R\` of ${o.large} services x ${o.reals} realservers`, target: '<= 100 MiB', met: large.peakRssKiB / 1024 <= 100,
      note: `${(large.peakRssKiB / 1024).toFixed(0)} MiB; the restore took ${(large.ms / 1000).toFixed(1)} s`,
    },
  ];
  return { config: o, rows, restores: out.restores };
}

/** The markdown table of bench/run.ts's "control plane: the CLI" section. */
export function cliMarkdown(b: CliBench): string[] {
  const f = (x: number) => (x < 10 ? x.toFixed(2) : x.toFixed(0));
  const md = [
    `#### Control plane: the CLI and the library as an operator meets them (bench/cli.ts; ${b.config.rounds} rounds, each measuring its own floor; ms and ratios: median [min-max])`, '',
    '| case | ms | ratio | target |', '| --- | --- | --- | --- |',
  ];
  for (const r of b.rows) {
    const ms = r.ms ? `${f(r.ms.median)} [${f(r.ms.min)}-${f(r.ms.max)}]` : (r.note ?? '');
    const ratio = r.ratio ? `${r.ratio.median.toFixed(2)}x [${r.ratio.min.toFixed(2)}-${r.ratio.max.toFixed(2)}] of ${r.ratio.of}` : '';
    const target = r.target ? `${r.target}: ${r.met ? '**met**' : 'not met'}` : '';
    md.push(`| ${r.name} | ${ms} | ${ratio} | ${target} |`);
  }
  return md;
}
