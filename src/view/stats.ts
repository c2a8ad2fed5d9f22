/**
 * The stats view: a director's counters as rates per service and realserver (two readings of the
 * per-CPU counters) and its text table. Pure, and shared by `lvs-xdp stats`, `lvs-xdp top` and
 * `run`'s metrics and status page, so it sits below both src/cli and src/ops.
 */
import type { StatsSample } from '../director/director.js';
import { COUNTERS } from '../abi/generated.js';
import { formatAddrPort } from '../model/address.js';

export interface Rates { pps: number; bps: number; cps: number }
export interface StatsView {
  seconds: number;
  services: {
    id: string; packets: bigint; bytes: bigint; conns: bigint; rates: Rates;
    realservers: { address: string; port: number; weight: number; packets: bigint; bytes: bigint; conns: bigint; active: number; inactive: number; rates: Rates }[];
  }[];
  counters: Record<string, { value: bigint; rate: number; kind: string }>;
  connections: { entries: number; max: number; evicted: number };
}

function rate(now: bigint, before: bigint | undefined, seconds: number): number {
  if (before === undefined || seconds <= 0 || now < before) return 0;
  return Number(now - before) / seconds;
}

/** Pure: a view of `cur` with rates against `prev` (same director; missing rows rate 0). */
export function statsView(cur: StatsSample, prev?: StatsSample): StatsView {
  const seconds = prev ? Number(cur.at - prev.at) / 1e9 : 0;
  const prevSvc = new Map(prev?.services.map((s) => [s.id, s]));
  return {
    seconds,
    services: cur.services.map((s) => {
      const p = prevSvc.get(s.id);
      const prevReal = new Map(p?.realservers.map((r) => [r.address, r]));
      return {
        id: s.id, packets: s.packets, bytes: s.bytes, conns: s.conns,
        rates: { pps: rate(s.packets, p?.packets, seconds), bps: rate(s.bytes, p?.bytes, seconds), cps: rate(s.conns, p?.conns, seconds) },
        realservers: s.realservers.map((r) => {
          const q = prevReal.get(r.address);
          return {
            ...r, rates: { pps: rate(r.packets, q?.packets, seconds), bps: rate(r.bytes, q?.bytes, seconds), cps: rate(r.conns, q?.conns, seconds) },
          };
        }),
      };
    }),
    counters: Object.fromEntries(COUNTERS.map((c) => {
      const name = c.name.toLowerCase();
      return [name, { value: cur.counters[name] ?? 0n, rate: rate(cur.counters[name] ?? 0n, prev?.counters[name], seconds), kind: c.kind }];
    })),
    connections: cur.connections,
  };
}

/** Counts and rates as a few significant characters (12345 -> 12.3K), for terminal tables. */
export function humanCount(n: number | bigint): string {
  const v = Number(n);
  if (v < 1e4) return String(Math.round(v));
  for (const [d, u] of [[1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'K']] as const) if (v >= d) return `${(v / d).toFixed(v / d < 100 ? 1 : 0)}${u}`;
  return String(v);
}

/** pps, bit/s, conn/s. */
function rateCells(r: Rates): string[] {
  return [humanCount(r.pps), humanCount(r.bps * 8), humanCount(r.cps)];
}

/** Pure: the text table. Counters that are zero are left out unless `all`. */
export function formatStatsView(v: StatsView, all = false): string {
  const rows: string[][] = [['', 'packets', 'bytes', 'conns', 'active', 'inact', 'pps', 'bit/s', 'conn/s']];
  for (const s of v.services) {
    rows.push([s.id, humanCount(s.packets), humanCount(s.bytes), humanCount(s.conns), '', '', ...rateCells(s.rates)]);
    for (const r of s.realservers) {
      rows.push([`  -> ${formatAddrPort(r.address, r.port)} w${r.weight}`, humanCount(r.packets), humanCount(r.bytes), humanCount(r.conns),
        String(r.active), String(r.inactive), ...rateCells(r.rates)]);
    }
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  let out = rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd()).join('\n');
  if (v.services.length === 0) out += '\n(no virtual services)';
  const pct = v.connections.max ? ((100 * v.connections.entries) / v.connections.max).toFixed(1) : '0';
  out += `\n\nconnection table: ${v.connections.entries} / ${v.connections.max} entries (${pct}%), ${v.connections.evicted} evicted since load\n`;
  const cs = Object.entries(v.counters).filter(([, c]) => all || c.value > 0n);
  if (cs.length) {
    const w = Math.max(...cs.map(([n]) => n.length));
    out += `\n${'counter'.padEnd(w)}  kind   ${'total'.padStart(12)}  ${'per s'.padStart(9)}\n`;
    for (const [n, c] of cs) out += `${n.padEnd(w)}  ${c.kind.padEnd(5)}  ${String(c.value).padStart(12)}  ${humanCount(c.rate).padStart(9)}\n`;
  }
  return out;
}
