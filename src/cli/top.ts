/**
 * `lvs-xdp top`: a terminal view of rates per service and realserver, refreshed every second
 * (statsView over two readings, as `stats`), with the health state that a running `lvs-xdp run`
 * publishes in <state dir>/ops-health.json, the connection-table fill and the busiest outcome
 * and drop counters. q or Ctrl-C quits; --iterations N stops after N screens (scripts, tests).
 */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import type { Director } from '../director/director.js';
import { formatAddrPort } from '../model/address.js';
import { ConfigError } from '../errors.js';
import { statsView, humanCount, type StatsView } from '../view/stats.js';
import type { HealthRow, ServiceRow } from '../ops/metrics.js';
import { withStateOptions, openRepaired, type StateOpts } from './common.js';

export interface HealthFile {
  pid: number; stoppedAt?: string;
  realservers: (Pick<HealthRow, 'service' | 'address'> & Partial<HealthRow> & { state: string })[];
  services?: ServiceRow[];
}

export function readHealthFile(d: Director): HealthFile | undefined {
  try {
    const doc = JSON.parse(readFileSync(`${d.paths.stateDir}/ops-health.json`, 'utf8')) as HealthFile;
    process.kill(doc.pid, 0); // a run that is gone publishes nothing
    return doc.stoppedAt ? undefined : doc;
  } catch {
    return undefined;
  }
}

/** Pure: one screen. */
export function formatTop(v: StatsView, health: HealthFile | undefined, at: Date, width = 120): string {
  const hs = new Map(health?.realservers.map((r) => [`${r.service}/${r.address}`, r.state]));
  const rows: string[][] = [['service / realserver', 'weight', 'health', 'pps', 'bit/s', 'conn/s', 'active', 'inact', 'conns']];
  for (const s of v.services) {
    rows.push([s.id, '', '', humanCount(s.rates.pps), humanCount(s.rates.bps * 8), humanCount(s.rates.cps), '', '', humanCount(s.conns)]);
    for (const r of s.realservers) {
      rows.push([`  ${formatAddrPort(r.address, r.port)}`, String(r.weight), hs.get(`${s.id}/${r.address}`) ?? (health ? 'sorry/-' : '-'),
        humanCount(r.rates.pps), humanCount(r.rates.bps * 8), humanCount(r.rates.cps), String(r.active), String(r.inactive), humanCount(r.conns)]);
    }
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const lines = rows.map((r) => r.map((c, i) => (i === 0 || i === 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd().slice(0, width));
  const pct = v.connections.max ? ((100 * v.connections.entries) / v.connections.max).toFixed(1) : '0';
  const busy = Object.entries(v.counters).filter(([, c]) => c.rate > 0).sort((a, b) => b[1].rate - a[1].rate).slice(0, 6)
    .map(([n, c]) => `${n} ${humanCount(c.rate)}/s`).join('  ');
  return [
    `lvs-xdp top - ${at.toISOString()}  conn table ${v.connections.entries}/${v.connections.max} (${pct}%)  health: ${health ? `from run (pid ${health.pid})` : 'no run active'}`,
    `counters/s: ${busy || 'idle'}`,
    '',
    ...lines,
    ...(v.services.length ? [] : ['(no virtual services)']),
  ].join('\n');
}

function positive(name: string, max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0 || n > max) throw new ConfigError(`--${name} ${JSON.stringify(v)}: a number between 0 and ${max}`, { field: `--${name}` });
    return n;
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function topCommand(): Command {
  return withStateOptions(new Command('top'))
    .description('live terminal view of rates per service and realserver (refreshed every second; q quits)')
    .option('-i, --interval <seconds>', 'refresh interval', positive('interval', 3600), 1)
    .option('-n, --iterations <n>', 'stop after n screens', positive('iterations', 1e9))
    .action(async (o: StateOpts & { interval: number; iterations?: number }) => {
      const d = await openRepaired(o);
      const tty = process.stdout.isTTY === true;
      let stop = false;
      const quit = (): void => { stop = true; };
      process.once('SIGINT', quit);
      process.once('SIGTERM', quit);
      if (tty && process.stdin.isTTY) {
        process.stdin.setRawMode(true);
        process.stdin.on('data', (b: Buffer) => { if (b[0] === 0x71 || b[0] === 0x03) quit(); });
      }
      if (tty) process.stdout.write('\x1b[?1049h\x1b[?25l');
      try {
        let prev = d.readStats();
        for (let i = 0; !stop && (o.iterations === undefined || i < o.iterations); i++) {
          const end = Date.now() + o.interval * 1000;
          while (!stop && Date.now() < end) await sleep(Math.min(100, end - Date.now()));
          if (stop) break;
          const cur = d.readStats();
          const screen = formatTop(statsView(cur, prev), readHealthFile(d), new Date(), tty ? process.stdout.columns : 200);
          prev = cur;
          process.stdout.write(tty ? `\x1b[H\x1b[2J${screen}\n` : `${screen}\n\n`);
        }
      } finally {
        if (tty) process.stdout.write('\x1b[?25h\x1b[?1049l');
        if (tty && process.stdin.isTTY) process.stdin.setRawMode(false);
        process.stdin.pause();
        d.close();
      }
    });
}
