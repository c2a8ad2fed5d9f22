/**
 * `lvs-xdp top`: a terminal view of rates per service and realserver, refreshed every second
 * (statsView over two readings, as `stats`), with the health state that a running `lvs-xdp run`
 * publishes in <state dir>/ops-health.json, the connection-table fill and the busiest outcome
 * and drop counters. Sorted by a column (--sort, key s; r reverses), one service (--service,
 * key f; a: all), health in colour on a terminal unless NO_COLOR is set. The screen is
 * src/view/top.ts (pure). q or Ctrl-C quits; --iterations N stops after N screens (scripts, tests).
 */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import type { Director } from '../director/director.js';
import { ConfigError } from '../errors.js';
import { statsView } from '../view/stats.js';
import { formatTop, topKey, isSortKey, validServiceFilter, SORT_KEYS, type SortKey, type TopView } from '../view/top.js';
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

function positive(name: string, max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0 || n > max) throw new ConfigError(`--${name} ${JSON.stringify(v)}: a number between 0 and ${max}`, { field: `--${name}` });
    return n;
  };
}

function sortKey(v: string): SortKey {
  if (!isSortKey(v)) throw new ConfigError(`--sort ${JSON.stringify(v)}: one of ${SORT_KEYS.join(', ')}`, { field: '--sort' });
  return v;
}

function serviceFilter(v: string): string {
  if (!validServiceFilter(v)) throw new ConfigError(`--service ${JSON.stringify(v)}: expected VIP:PORT, [V6]:PORT or "tcp VIP:PORT"`, { field: '--service' });
  return v;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function topCommand(): Command {
  return withStateOptions(new Command('top'))
    .description('live terminal view of rates per service and realserver (refreshed every second; q quits)')
    .option('-i, --interval <seconds>', 'refresh interval', positive('interval', 3600), 1)
    .option('-n, --iterations <n>', 'stop after n screens', positive('iterations', 1e9))
    .option('--sort <column>', `sort by a column: ${SORT_KEYS.join(', ')} (names and health ascending, numbers largest first; key s)`, sortKey)
    .option('--reverse', 'reverse the order (key r)')
    .option('--service <vip:port>', 'only this virtual service (VIP:PORT, [V6]:PORT or "tcp VIP:PORT"; key f cycles, a shows all)', serviceFilter)
    .action(async (o: StateOpts & { interval: number; iterations?: number; sort?: SortKey; reverse?: boolean; service?: string }) => {
      const d = await openRepaired(o);
      const tty = process.stdout.isTTY === true;
      // https://no-color.org: any non-empty NO_COLOR turns colour off; so does a pipe.
      const color = tty && !process.env.NO_COLOR;
      let view: TopView = { ...(o.sort ? { sort: o.sort } : {}), ...(o.reverse ? { reverse: true } : {}), ...(o.service ? { service: o.service } : {}), color };
      let services: string[] = [];
      // A terminal that reports no size (0, e.g. under script(1)) gets the width of a pipe.
      const width = (): number => (tty && process.stdout.columns > 0 ? process.stdout.columns : 200);
      let redraw: (() => void) | undefined;
      let stop = false;
      const quit = (): void => { stop = true; };
      process.once('SIGINT', quit);
      process.once('SIGTERM', quit);
      if (tty && process.stdin.isTTY) {
        process.stdin.setRawMode(true);
        process.stdin.on('data', (b: Buffer) => {
          if (b[0] === 0x71 || b[0] === 0x03) return quit();
          const next = topKey(view, b.toString('utf8', 0, 1), services);
          if (next !== view) {
            view = next;
            redraw?.();
          }
        });
      }
      if (tty) process.stdout.write('\x1b[?1049h\x1b[?25l');
      try {
        let prev = d.readStats();
        for (let i = 0; !stop && (o.iterations === undefined || i < o.iterations); i++) {
          const end = Date.now() + o.interval * 1000;
          while (!stop && Date.now() < end) await sleep(Math.min(100, end - Date.now()));
          if (stop) break;
          const cur = d.readStats();
          const v = statsView(cur, prev);
          const health = readHealthFile(d);
          services = v.services.map((s) => s.id);
          // A key redraws the last reading at once, not at the next interval.
          redraw = () => process.stdout.write(`\x1b[H\x1b[2J${formatTop(v, health, new Date(), { ...view, width: width() })}\n`);
          const screen = formatTop(v, health, new Date(), { ...view, width: width() });
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
