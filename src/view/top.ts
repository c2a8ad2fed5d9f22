/**
 * `lvs-xdp top`'s screen, pure: rows per service and realserver from a stats view and the
 * health that `run` publishes, sorted by a column, filtered to one service, the health cell in
 * colour (green up, yellow degraded / quiesced, red down) when asked. Keys change the view
 * through topKey, also pure; src/cli/top.ts does the reading and the terminal.
 */
import { formatAddrPort } from '../model/address.js';
import { humanCount, type StatsView } from './stats.js';

/** One realserver's health as `run` publishes it (<state dir>/ops-health.json). */
export interface TopHealth { service: string; address: string; state: string; effectiveWeight?: number; drained?: boolean; unresolved?: boolean }
export interface TopHealthDoc { pid: number; realservers: TopHealth[]; services?: { service: string; allDown: boolean; sorryActive: boolean }[] }

export const SORT_KEYS = ['name', 'weight', 'health', 'pps', 'bps', 'cps', 'active', 'inact', 'conns'] as const;
export type SortKey = typeof SORT_KEYS[number];

export interface TopView {
  /** undefined: the configuration's order. */
  sort?: SortKey;
  /** Reverse the sort's natural order (names and health ascending, numbers descending). */
  reverse?: boolean;
  /** "VIP:PORT", "[V6]:PORT" or a service id ("tcp VIP:PORT"): only that service. */
  service?: string;
  color?: boolean;
  width?: number;
}

const HEADERS = ['service / realserver', 'weight', 'health', 'pps', 'bit/s', 'conn/s', 'active', 'inact', 'conns'];

export function isSortKey(v: string): v is SortKey {
  return (SORT_KEYS as readonly string[]).includes(v);
}

/** Does the filter name this service (the protocol may be left out)? */
export function serviceMatches(filter: string, id: string): boolean {
  return id === filter || id.slice(id.indexOf(' ') + 1) === filter;
}

/** The filter's form is checked before the first screen: VIP:PORT, [V6]:PORT, or PROTO VIP:PORT. */
export function validServiceFilter(v: string): boolean {
  return /^(?:(?:tcp|udp) )?(?:\[[0-9a-fA-F:.]+\]|[0-9.]+):\d{1,5}$/.test(v);
}

type Grade = 'up' | 'degraded' | 'down' | 'none';

interface Row {
  name: string; weight: number; health: string; grade: Grade; rank: number;
  pps: number; bps: number; cps: number; active: number; inact: number; conns: number;
  cells: string[];
}

/** Health order for sorting: the worst first. */
const RANK: Record<Grade, number> = { down: 0, degraded: 1, up: 2, none: 3 };

function sortRows<T extends Row>(rows: T[], key: SortKey | undefined, reverse: boolean): T[] {
  if (!key) return reverse ? [...rows].reverse() : rows;
  const cmp = (a: T, b: T): number => {
    if (key === 'name') return a.name.localeCompare(b.name, 'en', { numeric: true });
    if (key === 'health') return a.rank - b.rank || a.name.localeCompare(b.name, 'en', { numeric: true });
    return b[key] - a[key]; // numbers: the largest first
  };
  const sorted = [...rows].sort(cmp);
  return reverse ? sorted.reverse() : sorted;
}

const PAINT: Record<Grade, string> = { up: '\x1b[32m', degraded: '\x1b[33m', down: '\x1b[31m', none: '' };

/** Pure: one screen. */
export function formatTop(v: StatsView, health: TopHealthDoc | undefined, at: Date, o: TopView = {}): string {
  const width = o.width ?? 120;
  const hs = new Map(health?.realservers.map((r) => [`${r.service}/${r.address}`, r]));
  const allDown = new Map(health?.services?.map((s) => [s.service, s.allDown]));
  const services = v.services.filter((s) => o.service === undefined || serviceMatches(o.service, s.id));
  const groups = services.map((s) => {
    const reals: Row[] = s.realservers.map((r) => {
      const h = hs.get(`${s.id}/${r.address}`);
      const state = h?.state ?? (health ? 'sorry/-' : '-');
      const quiesced = h !== undefined && h.state !== 'down' && (h.drained === true || h.unresolved === true || r.weight === 0);
      const grade: Grade = h?.state === 'down' ? 'down' : quiesced ? 'degraded' : h?.state === 'up' ? 'up' : 'none';
      const label = `${state}${h?.drained ? ' drained' : ''}${h?.unresolved ? ' unresolved' : ''}`;
      return {
        name: formatAddrPort(r.address, r.port), weight: r.weight, health: label, grade, rank: RANK[grade],
        pps: r.rates.pps, bps: r.rates.bps * 8, cps: r.rates.cps, active: r.active, inact: r.inactive, conns: Number(r.conns),
        cells: [`  ${formatAddrPort(r.address, r.port)}`, String(r.weight), label, humanCount(r.rates.pps), humanCount(r.rates.bps * 8),
          humanCount(r.rates.cps), String(r.active), String(r.inactive), humanCount(r.conns)],
      };
    });
    const checked = reals.filter((r) => r.grade !== 'none');
    const up = checked.filter((r) => r.grade === 'up' || r.grade === 'degraded').length;
    const down = checked.length - up;
    const grade: Grade = allDown.get(s.id) || (checked.length > 0 && up === 0) ? 'down' : down > 0 || checked.some((r) => r.grade === 'degraded') ? 'degraded' : checked.length ? 'up' : 'none';
    const label = allDown.get(s.id) ? 'ALL DOWN' : checked.length ? `${up}/${checked.length} up` : '';
    const weight = s.realservers.reduce((a, r) => a + r.weight, 0);
    const active = s.realservers.reduce((a, r) => a + r.active, 0);
    const inact = s.realservers.reduce((a, r) => a + r.inactive, 0);
    const row: Row = {
      name: s.id, weight, health: label, grade, rank: RANK[grade], pps: s.rates.pps, bps: s.rates.bps * 8, cps: s.rates.cps, active, inact, conns: Number(s.conns),
      cells: [s.id, '', label, humanCount(s.rates.pps), humanCount(s.rates.bps * 8), humanCount(s.rates.cps), '', '', humanCount(s.conns)],
    };
    return { row, reals: sortRows(reals, o.sort, o.reverse ?? false) };
  });
  const ordered = sortRows(groups.map((g) => ({ ...g.row, g })), o.sort, o.reverse ?? false);
  const rows: Row[] = [];
  for (const x of ordered) rows.push(x, ...x.g.reals);
  const all = [HEADERS, ...rows.map((r) => r.cells)];
  const widths = HEADERS.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  const line = (cells: string[], grade: Grade): string => {
    const padded = cells.map((c, i) => (i === 0 || i === 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)));
    const plain = padded.join('  ').trimEnd().slice(0, width);
    if (!o.color || grade === 'none' || !cells[2]) return plain;
    // Only the health cell is painted, and only when it is on the screen whole.
    const from = padded[0]!.length + 2 + padded[1]!.length + 2;
    const to = from + cells[2].length;
    return to <= plain.length ? `${plain.slice(0, from)}${PAINT[grade]}${plain.slice(from, to)}\x1b[0m${plain.slice(to)}` : plain;
  };
  const headerCells = HEADERS.map((h, i) => (o.sort && SORT_KEYS[i] === o.sort ? `${h}${o.reverse ? '^' : '*'}` : h));
  const lines = [line(headerCells, 'none'), ...rows.map((r) => line(r.cells, r.grade))];
  const pct = v.connections.max ? ((100 * v.connections.entries) / v.connections.max).toFixed(1) : '0';
  const busy = Object.entries(v.counters).filter(([, c]) => c.rate > 0).sort((a, b) => b[1].rate - a[1].rate).slice(0, 6)
    .map(([n, c]) => `${n} ${humanCount(c.rate)}/s`).join('  ');
  const empty = v.services.length === 0 ? ['(no virtual services)'] : services.length === 0 ? [`(no virtual service matches ${o.service})`] : [];
  return [
    `lvs-xdp top - ${at.toISOString()}  conn table ${v.connections.entries}/${v.connections.max} (${pct}%)  health: ${health ? `from run (pid ${health.pid})` : 'no run active'}`,
    `counters/s: ${busy || 'idle'}`,
    `sort: ${o.sort ? `${o.sort}${o.reverse ? ' (reversed)' : ''}` : `as configured${o.reverse ? ' (reversed)' : ''}`}  service: ${o.service ?? 'all'}  keys: s sort, r reverse, f service, a all, q quit`,
    '',
    ...lines,
    ...empty,
  ].join('\n');
}

/**
 * Pure: the view after a key. s: the next sort column (after the last: the configuration's
 * order); r: reverse; f: the next service of `services` (after the last: all); a: all services.
 * Other keys change nothing (the caller handles q and Ctrl-C).
 */
export function topKey(view: TopView, key: string, services: readonly string[]): TopView {
  switch (key) {
    case 's': {
      const i = view.sort ? SORT_KEYS.indexOf(view.sort) : -1;
      const next = SORT_KEYS[i + 1];
      const { sort: _drop, ...rest } = view;
      return next ? { ...rest, sort: next } : rest;
    }
    case 'r':
      return { ...view, reverse: !view.reverse };
    case 'f': {
      const i = view.service === undefined ? -1 : services.findIndex((s) => serviceMatches(view.service!, s));
      const next = services[i + 1];
      const { service: _drop, ...rest } = view;
      return next ? { ...rest, service: next } : rest;
    }
    case 'a': {
      const { service: _drop, ...rest } = view;
      return rest;
    }
    default:
      return view;
  }
}
