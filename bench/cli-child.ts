/**
 * Runs in the control-plane benchmark's network namespace (bench/cli.ts enters it with
 * `nsenter --net`, so the host's bpffs stays visible). Two directors of their own (pin and state
 * directories), each on a veth of the namespace in generic mode: one restored with 10 services,
 * one with 1,000 (4 realservers each, MACs given: nothing is resolved), both with `lvs-xdp -R`
 * while the CLI's resident memory is sampled. Then, in rounds, each case one after the other so
 * that every ratio compares figures of the same round:
 *  - `node -e 0` (the floor: a Node process that does nothing), `lvs-xdp --version`;
 *  - `lvs-xdp -e -t VIP:80 -r RIP -g -w W` (one realserver's weight) at 10 and at 1,000 services;
 *  - the same change through the library (Director.open + run, in this process) at both sizes,
 *    LIB_CHANGES times each per round, alternating, the round's figure their median: a change
 *    takes ~10-25 ms, of which one RCU grace period (the lvs_tables switch) that varies 5-15 ms
 *    on its own, so one sample per round made the 1,000-vs-10 ratio swing 0.5-2.5x.
 * Prints one JSON line. Detaches both directors (removing every pinned object) before it exits.
 */
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Director } from '../src/index.js';
import { parseRule } from '../src/ipvsadm/index.js';
import { median } from './lib/stats.js';

export interface CliChildOpts { rounds: number; small: number; large: number; reals: number }
const opts = JSON.parse(process.argv[2] ?? '{}') as CliChildOpts;
/** Library changes per size and round (see above). */
const LIB_CHANGES = 5;
const bin = fileURLToPath(new URL('../../bin/lvs-xdp.js', import.meta.url));
const ip = (...a: string[]) => execFileSync('ip', a, { stdio: ['ignore', 'ignore', 'inherit'] });

interface Run { ms: number; peakRssKiB: number; exit: number | null; stderr: string }

/** One process, timed from spawn to exit, its peak resident memory sampled from /proc every 5 ms. */
async function timed(args: string[], env: NodeJS.ProcessEnv = {}, stdin?: string): Promise<Run> {
  const t0 = process.hrtime.bigint();
  const p = spawn(process.execPath, args, { stdio: [stdin === undefined ? 'ignore' : 'pipe', 'ignore', 'pipe'], env: { ...process.env, ...env } });
  let stderr = '';
  p.stderr!.on('data', (b: Buffer) => { stderr += b.toString(); });
  if (stdin !== undefined) p.stdin!.end(stdin);
  let peak = 0;
  const sample = () => {
    try {
      const st = readFileSync(`/proc/${p.pid}/status`, 'utf8');
      peak = Math.max(peak, Number(/VmHWM:\s+(\d+)/.exec(st)?.[1] ?? 0), Number(/VmRSS:\s+(\d+)/.exec(st)?.[1] ?? 0));
    } catch { /* exited */ }
  };
  const timer = setInterval(sample, 5);
  const exit = await new Promise<number | null>((res) => p.on('exit', (code) => { sample(); res(code); }));
  clearInterval(timer);
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, peakRssKiB: peak, exit, stderr };
}

const vip = (i: number) => `10.${10 + (i >> 8)}.${i & 255}.1`;
const rip = (i: number, j: number) => `10.99.${1 + j}.${1 + (i % 250)}`;
const hex = (n: number) => n.toString(16).padStart(2, '0');

/** ipvsadm rules: `services` services of `reals` DR realservers, MACs given. */
function rules(services: number, reals: number): string {
  const out: string[] = [];
  for (let i = 0; i < services; i++) {
    out.push(`-A -t ${vip(i)}:80 -s mh`);
    for (let j = 0; j < reals; j++) out.push(`-a -t ${vip(i)}:80 -r ${rip(i, j)}:80 -g -w 1 --mac 02:00:00:${hex(j)}:${hex(i >> 8)}:${hex(i & 255)}`);
  }
  return `${out.join('\n')}\n`;
}

interface Lab { name: string; services: number; pinDir: string; stateDir: string; env: NodeJS.ProcessEnv; weight: number }
const labs: Lab[] = [opts.small, opts.large].map((services, k) => {
  const pinDir = `/sys/fs/bpf/lvsb-cli-${process.pid}-${k}`;
  const stateDir = `/run/lvsb-cli-${process.pid}-${k}`;
  return { name: `lvsbc${k}`, services, pinDir, stateDir, env: { LVS_XDP_PIN_DIR: pinDir, LVS_XDP_STATE_DIR: stateDir }, weight: 1 };
});
/** The realserver every change edits: one in the middle of the configuration. */
const target = (l: Lab) => ({ vip: vip(l.services >> 1), rip: rip(l.services >> 1, 0) });
const nextWeight = (l: Lab) => (l.weight = (l.weight % 5) + 1);

function check(r: Run, what: string): Run {
  if (r.exit !== 0) throw new Error(`${what} exited ${r.exit}: ${r.stderr.slice(-2000)}`);
  return r;
}

const out: Record<string, unknown> = {};
try {
  ip('link', 'set', 'lo', 'up');
  for (const l of labs) {
    ip('link', 'add', `${l.name}a`, 'type', 'veth', 'peer', 'name', `${l.name}b`);
    ip('link', 'set', `${l.name}a`, 'up');
    ip('link', 'set', `${l.name}b`, 'up');
    check(await timed([bin, 'attach', `${l.name}a`, '--mode', 'generic'], l.env), 'attach');
  }
  // Restores (the large one is the memory target's figure).
  const restores = [];
  for (const l of labs) {
    const r = check(await timed([bin, '-R'], l.env, rules(l.services, opts.reals)), `-R of ${l.services} services`);
    restores.push({ services: l.services, reals: opts.reals, ms: r.ms, peakRssKiB: r.peakRssKiB });
  }
  out.restores = restores;

  const dirs = labs.map((l) => Director.open({ pinDir: l.pinDir, stateDir: l.stateDir }));
  const rows: Record<string, number[]> = { node: [], version: [], cliSmall: [], cliLarge: [], libSmall: [], libLarge: [] };
  for (let round = 0; round < opts.rounds; round++) {
    rows.node!.push(check(await timed(['-e', '0']), 'node -e 0').ms);
    rows.version!.push(check(await timed([bin, '--version']), '--version').ms);
    for (const [k, l] of labs.entries()) {
      const t = target(l);
      const r = await timed([bin, '-e', '-t', `${t.vip}:80`, '-r', `${t.rip}:80`, '-g', '-w', String(nextWeight(l))], l.env);
      rows[k ? 'cliLarge' : 'cliSmall']!.push(check(r, `-e at ${l.services} services`).ms);
    }
    const lib: number[][] = [[], []];
    for (let i = 0; i < LIB_CHANGES; i++) {
      for (const [k, l] of labs.entries()) {
        const t = target(l);
        const cmd = parseRule(['-e', '-t', `${t.vip}:80`, '-r', `${t.rip}:80`, '-g', '-w', String(nextWeight(l))], 'bench');
        const t0 = process.hrtime.bigint();
        const res = await dirs[k]!.run([cmd]);
        if (!res.applied) throw new Error(`library change at ${l.services} services wrote nothing`);
        lib[k]!.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
    }
    rows.libSmall!.push(median(lib[0]!));
    rows.libLarge!.push(median(lib[1]!));
  }
  for (const d of dirs) d.close();
  out.rounds = rows;
  out.config = opts;
} finally {
  for (const l of labs) {
    try {
      await timed([bin, 'detach', `${l.name}a`], l.env);
    } catch { /* cleaned below */ }
    rmSync(l.pinDir, { recursive: true, force: true });
    rmSync(l.stateDir, { recursive: true, force: true });
  }
}
process.stdout.write(`${JSON.stringify(out)}\n`);
