/**
 * Run by bench/memory.ts inside a network namespace of its own (nsenter --net): a director driven
 * through the CLI, as an operator would, with pin and state directories of its own.
 *
 *   fleet      attach with the default sizes, `-R` 1,000 services x 4 realservers (Maglev, default
 *              table sizes), `status --json`; then one `apply -f` that changes a weight in every
 *              service (each keeps its previous table in its spare slot until the next change),
 *              `status --json` again; and after one more change, to one service.
 *   small-box  attach --preset small, `run` with tcp health checks for 16 services x 8
 *              realservers that answer (a listener on their addresses in this namespace); after
 *              the checks have run a while, run's VmRSS / VmHWM from /proc and `status --json`.
 *
 * Prints one JSON line (MemoryChildResult).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/lvs-xdp.js', import.meta.url));

export interface StatusMemory { memoryBytes: number; tables: { count: number; slots: number; memlock: number }; maps: { name: string; memlock: number }[] }
export interface FleetResult { services: number; reals: number; tableSize: number; restored: StatusMemory; afterChange: StatusMemory; afterNext: StatusMemory; restoreMs: number }
export interface SmallBoxResult {
  services: number; reals: number; checks: string; settleS: number; nodeOptions: string; nodeArgs: string[]; healthy: number;
  maps: StatusMemory; vmRssKiB: number; vmHwmKiB: number; rssKiB: number[]; nodeBaselineKiB: number;
}
export interface MemoryChildResult { fleet?: FleetResult; smallBox?: SmallBoxResult }

const dir = mkdtempSync(join(tmpdir(), 'lvsb-mem-'));
const env = { ...process.env, LVS_XDP_PIN_DIR: `/sys/fs/bpf/lvsb-mem-${process.pid}`, LVS_XDP_STATE_DIR: join(dir, 'state') };

function cli(args: string[], input?: string): string {
  const r = spawnSync(process.execPath, [BIN, ...args], { env, encoding: 'utf8', input, maxBuffer: 64 << 20, timeout: 600_000 });
  if (r.status !== 0) throw new Error(`lvs-xdp ${args.join(' ')}: exit ${r.status ?? r.signal}: ${r.stderr.slice(-2000)}`);
  return r.stdout;
}

function sh(cmd: string, ...args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
}

function statusMemory(): StatusMemory {
  const s = JSON.parse(cli(['status', '--json'])) as StatusMemory;
  return { memoryBytes: s.memoryBytes, tables: s.tables, maps: s.maps.map((m) => ({ name: m.name, memlock: m.memlock })) };
}

const mac = (i: number) => `02:00:00:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;

function link(name: string): void {
  sh('ip', 'link', 'add', name, 'type', 'veth', 'peer', 'name', `${name}p`);
  sh('ip', 'link', 'set', name, 'up');
  sh('ip', 'link', 'set', `${name}p`, 'up');
}

function detach(iface: string): void {
  spawnSync(process.execPath, [BIN, 'detach', iface], { env });
  rmSync(env.LVS_XDP_PIN_DIR, { recursive: true, force: true });
  rmSync(env.LVS_XDP_STATE_DIR, { recursive: true, force: true });
}

function fleet(services: number, reals: number): FleetResult {
  link('lvsbm0');
  sh('ip', 'addr', 'add', '10.90.0.1/16', 'dev', 'lvsbm0');
  cli(['attach', 'lvsbm0', '--mode', 'generic']);
  try {
    const rules = (w: (s: number) => number) => {
      const lines: string[] = [];
      for (let s = 0; s < services; s++) {
        const vip = `10.91.${s >> 8}.${s & 255}:80`;
        lines.push(`-A -t ${vip} -s mh`);
        for (let r = 0; r < reals; r++) lines.push(`-a -t ${vip} -r 10.92.${(s * reals + r) >> 8}.${(s * reals + r) & 255}:80 -g -w ${r === 0 ? w(s) : 1} --mac ${mac(s * reals + r)}`);
      }
      return `${lines.join('\n')}\n`;
    };
    const t = Date.now();
    cli(['-R'], rules(() => 1));
    const restoreMs = Date.now() - t;
    const restored = statusMemory();
    const file = join(dir, 'changed.rules');
    writeFileSync(file, rules(() => 2));
    cli(['apply', '-f', file]);
    const afterChange = statusMemory();
    // One more change, to one service: the others' previous tables go with its table batch.
    cli(['-e', '-t', '10.91.0.0:80', '-r', '10.92.0.1:80', '-g', '-w', '3', '--mac', mac(1)]);
    const afterNext = statusMemory();
    const tableSize = Number(/ mh (\d+) slots$/m.exec(cli(['config', '--digest']))?.[1]);
    return { services, reals, tableSize, restored, afterChange, afterNext, restoreMs };
  } finally {
    detach('lvsbm0');
    spawnSync('ip', ['link', 'del', 'lvsbm0']);
  }
}

function procKiB(pid: number, field: string): number {
  return Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function smallBox(services: number, reals: number, settleS: number, nodeOptions: string, nodeArgs: string[], runEnv: Record<string, string>): Promise<SmallBoxResult> {
  link('lvsbs0');
  sh('ip', 'addr', 'add', '10.93.0.1/16', 'dev', 'lvsbs0');
  // The realservers answer the checks: their addresses on this namespace's lo, one listener.
  sh('ip', 'link', 'set', 'lo', 'up');
  const rips: string[] = [];
  for (let i = 0; i < reals * services; i++) rips.push(`10.94.${i >> 8}.${i & 255}`);
  for (const a of rips) sh('ip', 'addr', 'add', `${a}/32`, 'dev', 'lo');
  const server: Server = createServer((c) => { c.on("error", () => {}); c.end(); });
  await new Promise<void>((r) => server.listen(80, '0.0.0.0', r));
  const yaml = ['services:'];
  for (let s = 0; s < services; s++) {
    yaml.push(`  - vip: 10.95.0.${s + 1}`, '    port: 80', '    scheduler: mh', '    health-check: { type: tcp, via: direct, interval: 2s }', '    realservers:');
    for (let r = 0; r < reals; r++) yaml.push(`      - { address: ${rips[s * reals + r]}, mac: "${mac(s * reals + r)}" }`);
  }
  const file = join(dir, 'small.yaml');
  writeFileSync(file, `${yaml.join('\n')}\n`);
  let run: ChildProcess | undefined;
  try {
    // As the profile runs it: attached once (at boot), then run keeps the file applied; run does not
    // load the BPF object itself, so its peak is not the object's.
    cli(['attach', 'lvsbs0', '--mode', 'generic', '--preset', 'small']);
    run = spawn(process.execPath, [...nodeArgs, BIN, 'run', '-f', file, '--no-listen', '--log-format', 'json'], {
      env: { ...env, ...runEnv, NODE_OPTIONS: nodeOptions }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    run.stdout!.on('data', (d: Buffer) => { log += d.toString(); });
    run.stderr!.on('data', (d: Buffer) => { log += d.toString(); });
    // run's resident memory every 5 s: it must level off, not grow with the checks.
    const rssKiB: number[] = [];
    for (let t = 0; t < settleS; t += 5) {
      // Half-way, a reload (SIGHUP) with one weight changed: its peak counts in VmHWM.
      if (t === Math.floor(settleS / 10) * 5) {
        writeFileSync(file, `${yaml.join('\n').replace(/(address: [\d.]+), mac/, '$1, weight: 2, mac')}\n`);
        run.kill('SIGHUP');
      }
      await sleep(Math.min(5, settleS - t) * 1000);
      if (run.exitCode !== null) throw new Error(`run exited ${run.exitCode}: ${log.slice(-2000)}`);
      rssKiB.push(procKiB(run.pid!, 'VmRSS'));
    }
    const vmRssKiB = procKiB(run.pid!, 'VmRSS');
    const vmHwmKiB = procKiB(run.pid!, 'VmHWM');
    const maps = statusMemory();
    const healthy = (cli(['-L', '-n']).match(/-> .* Route +[1-9]/g) ?? []).length;
    // A bare node process of the same build, for scale: what any Node.js control plane starts at.
    const base = spawnSync(process.execPath, ['-e', 'setTimeout(() => process.stdout.write(/VmHWM:\\s+(\\d+)/.exec(require("fs").readFileSync("/proc/self/status","utf8"))[1]), 200)'], { encoding: 'utf8' });
    return { services, reals, checks: 'tcp, via direct, every 2 s', settleS, nodeOptions, nodeArgs, healthy, maps, vmRssKiB, vmHwmKiB, rssKiB, nodeBaselineKiB: Number(base.stdout) };
  } finally {
    if (run && run.exitCode === null) {
      run.kill('SIGTERM');
      await new Promise((r) => run!.once('exit', r));
    }
    server.close();
    detach('lvsbs0');
    spawnSync('ip', ['link', 'del', 'lvsbs0']);
    for (const a of rips) spawnSync('ip', ['addr', 'del', `${a}/32`, 'dev', 'lo']);
  }
}

const opts = JSON.parse(process.argv[2] ?? '{}') as { fleet?: { services: number; reals: number }; smallBox?: { services: number; reals: number; settleS: number; nodeOptions?: string; nodeArgs?: string[]; env?: Record<string, string> } };
const out: MemoryChildResult = {};
try {
  if (opts.fleet) out.fleet = fleet(opts.fleet.services, opts.fleet.reals);
  if (opts.smallBox) out.smallBox = await smallBox(opts.smallBox.services, opts.smallBox.reals, opts.smallBox.settleS, opts.smallBox.nodeOptions ?? '', opts.smallBox.nodeArgs ?? [], opts.smallBox.env ?? {});
} finally {
  rmSync(dir, { recursive: true, force: true });
}
process.stdout.write(`${JSON.stringify(out)}\n`);
