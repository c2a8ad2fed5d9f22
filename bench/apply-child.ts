/**
 * Runs in the benchmark's network namespace, entered with `nsenter --net` so that the host's
 * bpffs stays visible (bench/apply.ts starts it). A director (src/director, the library API) is
 * attached in native mode to a veth of the namespace, with its own pin and state directories,
 * loaded with 1,000 services x 10 realservers; then:
 *  - benchmark.js: applying a one-realserver change (one weight, so one table) to it;
 *  - the CLI (`lvs-xdp apply -f`) applying a one-realserver change, its resident memory sampled
 *    from /proc every 10 ms (peak VmHWM reported).
 * Prints one JSON line. Detaches (removing every pinned object) before it exits.
 */
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Benchmark from 'benchmark';
import { Director } from '../src/index.js';
import { formatConfigYaml } from '../src/config/index.js';
import type { DirectorConfig } from '../src/model/types.js';
import { benchConfig } from './controlplane.js';
import { median } from './lib/stats.js';

const opts = JSON.parse(process.argv[2] ?? '{}') as { services: number; reals: number; tableSize: number; short?: boolean };
const pinDir = `/sys/fs/bpf/lvsb-bench-${process.pid}`;
const stateDir = `/run/lvsb-bench-${process.pid}`;
const ip = (...a: string[]) => execFileSync('ip', a, { stdio: ['ignore', 'ignore', 'inherit'] });
const work = mkdtempSync(join(tmpdir(), 'lvsb-apply-'));

function withWeight(cfg: DirectorConfig, svc: number, w: number): DirectorConfig {
  const services = cfg.services.slice();
  const s = services[svc]!;
  services[svc] = { ...s, realservers: s.realservers.map((r, i) => (i === 0 ? { ...r, weight: w } : r)) };
  return { ...cfg, services };
}

async function cliApply(file: string): Promise<{ ms: number; peakRssKiB: number; exit: number | null }> {
  const bin = fileURLToPath(new URL('../../bin/lvs-xdp.js', import.meta.url));
  const t0 = process.hrtime.bigint();
  const p = spawn(process.execPath, [bin, 'apply', '-f', file, '--pin-dir', pinDir, '--state-dir', stateDir], { stdio: ['ignore', 'ignore', 'inherit'] });
  let peak = 0;
  const sample = () => {
    try {
      const st = readFileSync(`/proc/${p.pid}/status`, 'utf8');
      const hwm = Number(/VmHWM:\s+(\d+)/.exec(st)?.[1] ?? 0);
      const rss = Number(/VmRSS:\s+(\d+)/.exec(st)?.[1] ?? 0);
      peak = Math.max(peak, hwm, rss);
    } catch { /* exited */ }
  };
  const timer = setInterval(sample, 10);
  const exit = await new Promise<number | null>((res) => p.on('exit', (code) => { sample(); res(code); }));
  clearInterval(timer);
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, peakRssKiB: peak, exit };
}

let d: Director | undefined;
try {
  ip('link', 'set', 'lo', 'up');
  ip('link', 'add', 'lvsbd0', 'type', 'veth', 'peer', 'name', 'lvsbd1');
  ip('link', 'set', 'lvsbd0', 'up');
  ip('link', 'set', 'lvsbd1', 'up');
  d = await Director.attach('lvsbd0', { pinDir, stateDir, mode: 'native' });
  const base = benchConfig(opts.services, opts.reals, opts.tableSize);
  const t0 = process.hrtime.bigint();
  await d.apply(base);
  const initialMs = Number(process.hrtime.bigint() - t0) / 1e6;

  // benchmark.js, deferred: each run applies the other weight of realserver 0 of service 500.
  const svc = Math.min(500, opts.services - 1);
  let w = 1;
  const samples: number[] = await new Promise((resolve, reject) => {
    const b = new Benchmark('apply a one-realserver change', {
      defer: true, minSamples: opts.short ? 1 : 5, maxTime: opts.short ? 0.1 : 5, initCount: 1,
      fn: (deferred: { resolve(): void }) => {
        w = w === 1 ? 2 : 1;
        d!.apply(withWeight(base, svc, w)).then(() => deferred.resolve(), reject);
      },
      onComplete: function (this: Benchmark & { error?: Error }) {
        if (this.error) reject(this.error);
        else resolve(this.stats.sample.map((x) => x * 1000));
      },
    });
    b.run();
  });

  // The CLI applying a one-realserver change, with its resident memory.
  const file = join(work, 'director.yaml');
  writeFileSync(file, formatConfigYaml(withWeight(base, svc, w === 1 ? 3 : 1)));
  const cli = await cliApply(file);
  writeFileSync(file, formatConfigYaml(withWeight(base, svc, 4)));
  const cli2 = await cliApply(file);

  process.stdout.write(JSON.stringify({
    config: { services: opts.services, reals: opts.reals, tableSize: opts.tableSize },
    initialMs,
    apply: { medianMs: median(samples), minMs: Math.min(...samples), maxMs: Math.max(...samples), samples: samples.length },
    cli: [cli, cli2],
  }) + '\n');
} finally {
  try { await d?.detach(); } catch (e) { process.stderr.write(`detach: ${String(e)}\n`); }
  d?.close();
  rmSync(work, { recursive: true, force: true });
  rmSync(pinDir, { recursive: true, force: true });
  rmSync(stateDir, { recursive: true, force: true });
}
