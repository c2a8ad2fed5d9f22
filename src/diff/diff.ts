/**
 * diffConfig: what changes between the running config and a desired one, in the order a reload
 * would apply it, and formatDiff for `lvs-xdp diff -f FILE` (human text plus JSON-able data,
 * with, per service, the share of table slots whose realserver would change).
 */
import { compareAddresses } from '../model/address.js';
import { compareServices, serviceId, servicesById, type DirectorConfig, type DirectorSettings, type Realserver, type VirtualService } from '../model/types.js';
import { buildTable, slotShareMoved } from '../sched/table.js';
import { tableSizeOf } from '../model/types.js';
import { FILE_KEY } from '../config/file-keys.js';
import { DEFAULT_TIMEOUTS } from '../model/timeouts.js';
import { formatPorts } from '../model/fwmark.js';
import type { FirewallMark } from '../model/types.js';

function markRules(m: FirewallMark | undefined): string[] {
  return (m?.match ?? []).map((x) => `-p ${x.protocol} -d ${x.address}${x.ports.length ? ` --dport ${formatPorts(x.ports)}` : ''}`);
}

/** Marks whose rules differ (added, removed or edited), by mark. */
function markChanges(a: readonly FirewallMark[] = [], b: readonly FirewallMark[] = []): Change[] {
  const marks = [...new Set([...a, ...b].map((m) => m.mark))].sort((x, y) => x - y);
  return marks.flatMap((mark): Change[] => {
    const from = markRules(a.find((m) => m.mark === mark));
    const to = markRules(b.find((m) => m.mark === mark));
    return same(from, to) ? [] : [{ kind: 'mark-changed', mark, from, to }];
  });
}

export interface FieldChange {
  field: string;
  from: unknown;
  to: unknown;
  /** tableSize only: the sizes compiled before and after (an unset one follows the realservers). */
  sizes?: { from: number; to: number };
}

export type Change =
  | { kind: 'settings-edited'; fields: FieldChange[] }
  | { kind: 'service-removed'; service: string }
  | { kind: 'service-added'; service: string; scheduler: string; realservers: number }
  | { kind: 'service-edited'; service: string; fields: FieldChange[] }
  | { kind: 'realserver-removed'; service: string; realserver: string }
  | { kind: 'realserver-added'; service: string; realserver: string; method: string; weight: number }
  | { kind: 'realserver-edited'; service: string; realserver: string; fields: FieldChange[] }
  /** A firewall mark's rules (`-p P -d D --dport X` each), before and after ([] when absent). */
  | { kind: 'mark-changed'; mark: number; from: string[]; to: string[] };

const SERVICE_FIELDS = ['scheduler', 'flags', 'persistence', 'ops', 'tableSize', 'healthCheck'] as const;
const REALSERVER_FIELDS = ['port', 'weight', 'method', 'mac', 'nextHop', 'ifname', 'healthCheck', 'upperThreshold', 'lowerThreshold'] as const;

/** Structural equality for plain config values (order of object keys ignored). */
function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => same((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

function fieldChanges<T extends object>(before: T, after: T, fields: readonly (keyof T & string)[]): FieldChange[] {
  return fields
    .filter((f) => !same(before[f], after[f]))
    .map((f) => ({ field: f, from: before[f], to: after[f] }));
}


function settingsChanges(a: DirectorSettings = {}, b: DirectorSettings = {}): FieldChange[] {
  const out: FieldChange[] = [];
  for (const group of ['tunnel', 'timeouts'] as const) {
    const ga = (a[group] ?? {}) as Record<string, unknown>;
    const gb = (b[group] ?? {}) as Record<string, unknown>;
    for (const k of [...new Set([...Object.keys(ga), ...Object.keys(gb)])].sort()) {
      if (!same(ga[k], gb[k])) out.push({ field: `${group}.${k}`, from: ga[k], to: gb[k] });
    }
  }
  if (!same(a.hashSeed, b.hashSeed)) out.push({ field: 'hashSeed', from: a.hashSeed, to: b.hashSeed });
  for (const f of ['expireNodestConn', 'expireQuiescentTemplate'] as const) {
    if (!same(a[f], b[f])) out.push({ field: f, from: a[f], to: b[f] });
  }
  return out;
}

function realserverChanges(id: string, before: readonly Realserver[], after: readonly Realserver[]): Change[] {
  const old = new Map(before.map((r) => [r.address, r]));
  const now = new Map(after.map((r) => [r.address, r]));
  const order = (list: Realserver[]) => list.sort((x, y) => compareAddresses(x.address, y.address));
  const out: Change[] = [];
  for (const r of order(before.filter((r) => !now.has(r.address)))) {
    out.push({ kind: 'realserver-removed', service: id, realserver: r.address });
  }
  for (const r of order(after.filter((r) => !old.has(r.address)))) {
    out.push({ kind: 'realserver-added', service: id, realserver: r.address, method: r.method, weight: r.weight });
  }
  for (const r of order(after.filter((r) => old.has(r.address)))) {
    const fields = fieldChanges(old.get(r.address)!, r, REALSERVER_FIELDS);
    if (fields.length > 0) out.push({ kind: 'realserver-edited', service: id, realserver: r.address, fields });
  }
  return out;
}

/**
 * Changes from `running` to `desired`: settings, removed services, added services (with their
 * realservers), then edits of kept services and their realservers; services in listing order.
 */
export function diffConfig(running: DirectorConfig, desired: DirectorConfig): Change[] {
  const out: Change[] = [];
  const settings = settingsChanges(running.settings, desired.settings);
  if (settings.length > 0) out.push({ kind: 'settings-edited', fields: settings });
  out.push(...markChanges(running.marks, desired.marks));
  const old = servicesById(running.services);
  const now = servicesById(desired.services);
  // Only what differs is sorted: a change to one service of a thousand sorts one.
  const byOrder = (a: [string, VirtualService], b: [string, VirtualService]) => compareServices(a[1], b[1]);
  for (const [id] of [...old].filter(([id]) => !now.has(id)).sort(byOrder)) {
    out.push({ kind: 'service-removed', service: id });
  }
  for (const [id, s] of [...now].filter(([id]) => !old.has(id)).sort(byOrder)) {
    out.push({ kind: 'service-added', service: id, scheduler: s.scheduler, realservers: s.realservers.length });
    out.push(...realserverChanges(id, [], s.realservers));
  }
  // The running service itself (a change elsewhere keeps it, object and all): nothing to compare.
  for (const [id, s] of [...now].filter(([id, x]) => old.has(id) && old.get(id) !== x).sort(byOrder)) {
    const before = old.get(id)!;
    const fields = fieldChanges(before, s, SERVICE_FIELDS);
    // A default Maglev size that moves with the realservers is a table-size change too: it rehashes every flow.
    const sizes = { from: tableSizeOf(before), to: tableSizeOf(s) };
    const size = fields.find((f) => f.field === 'tableSize');
    if (size) size.sizes = sizes;
    else if (sizes.from !== sizes.to) fields.push({ field: 'tableSize', from: before.tableSize, to: s.tableSize, sizes });
    const rs = realserverChanges(id, before.realservers, s.realservers);
    if (fields.length > 0 || rs.length > 0) out.push({ kind: 'service-edited', service: id, fields }, ...rs);
  }
  return out;
}

/**
 * Per kept service, the share of flows (table slots) whose realserver would change. Services whose
 * table cannot be built (an invalid config) are left out.
 */
export function tableMovesFor(running: DirectorConfig, desired: DirectorConfig): Map<string, number> {
  const old = servicesById(running.services);
  const out = new Map<string, number>();
  for (const s of desired.services) {
    const id = serviceId(s);
    const before = old.get(id);
    if (!before) continue;
    if (before === s) {
      out.set(id, 0);
      continue;
    }
    // Same scheduler, size and weighted realservers: the same table (tables are deterministic).
    const inputs = (x: typeof s) => JSON.stringify([x.scheduler, x.tableSize, x.realservers.map((r) => [r.address, r.weight]).sort()]);
    if (inputs(before) === inputs(s)) {
      out.set(serviceId(s), 0);
      continue;
    }
    try {
      const moved = slotShareMoved(
        buildTable(before), before.realservers.map((r) => r.address),
        buildTable(s), s.realservers.map((r) => r.address),
      );
      out.set(serviceId(s), moved);
    } catch {
      // Not buildable: validation reports why; the diff just has no share for it.
    }
  }
  return out;
}

export interface DiffReport {
  changes: Change[];
  /** serviceId -> share (0..1) of table slots that move to another realserver. */
  tableMoves: Record<string, number>;
  summary: { services: { added: number; removed: number; edited: number }; realservers: { added: number; removed: number; edited: number } };
}

function show(v: unknown): string {
  if (v === undefined) return 'none';
  if (Array.isArray(v)) return v.length === 0 ? 'none' : v.join(',');
  if (v !== null && typeof v === 'object' && 'timeout' in v && 'netmask' in v) {
    const p = v as { timeout: number; netmask: string };
    return `${p.timeout}s mask ${p.netmask}`;
  }
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

/** A field as the file spells it (`timeouts.tcp-fin`, `hash-seed`), the JSON report keeps the model's. */
function fileName(field: string): string {
  return field.split('.').map((k) => FILE_KEY[k] ?? k).join('.');
}

/** Unset timeouts and table sizes are their defaults, not "none". */
function showValue(field: string, v: unknown, size?: number): string {
  const t = /^timeouts\.(\w+)$/.exec(field)?.[1] as keyof typeof DEFAULT_TIMEOUTS | undefined;
  if (v === undefined && t !== undefined && t in DEFAULT_TIMEOUTS) return `default (${DEFAULT_TIMEOUTS[t]})`;
  if (v === undefined && field === 'tableSize') return size === undefined ? 'default' : `default (${size})`;
  return show(v);
}

function showFields(fields: readonly FieldChange[]): string {
  return fields.map((f) => `${fileName(f.field)} ${showValue(f.field, f.from, f.sizes?.from)} -> ${showValue(f.field, f.to, f.sizes?.to)}`).join(', ');
}

function percent(share: number): string {
  return `${(share * 100).toFixed(1)}%`;
}

function changeLine(c: Change): string {
  switch (c.kind) {
    case 'settings-edited': return `~ settings: ${showFields(c.fields)}`;
    case 'service-removed': return `- service ${c.service}`;
    case 'service-added': return `+ service ${c.service} (${c.scheduler}, ${c.realservers} realserver${c.realservers === 1 ? '' : 's'})`;
    case 'service-edited': return `~ service ${c.service}${c.fields.length > 0 ? `: ${showFields(c.fields)}` : ''}`;
    case 'realserver-removed': return `    - realserver ${c.realserver}`;
    case 'realserver-added': return `    + realserver ${c.realserver} (${c.method}, weight ${c.weight})`;
    case 'realserver-edited': return `    ~ realserver ${c.realserver}: ${showFields(c.fields)}`;
    case 'mark-changed': return `~ fwmark ${c.mark}: ${c.from.length ? c.from.join('; ') : 'none'} -> ${c.to.length ? c.to.join('; ') : 'none'}`;
  }
}

/** Text for people and data for --json; `tableMoves` from tableMovesFor (or the caller's own). */
export function formatDiff(changes: readonly Change[], tableMoves: ReadonlyMap<string, number> = new Map()): { text: string; data: DiffReport } {
  const count = (kind: Change['kind']) => changes.filter((c) => c.kind === kind).length;
  const data: DiffReport = {
    changes: [...changes],
    tableMoves: Object.fromEntries([...tableMoves].filter(([, v]) => v > 0)),
    summary: {
      services: { added: count('service-added'), removed: count('service-removed'), edited: count('service-edited') },
      realservers: { added: count('realserver-added'), removed: count('realserver-removed'), edited: count('realserver-edited') },
    },
  };
  if (changes.length === 0) return { text: 'No changes.\n', data };
  const lines: string[] = [];
  changes.forEach((c, i) => {
    lines.push(changeLine(c));
    // After an edited service's last realserver change, the share of its flows that move.
    const next = changes[i + 1];
    const svc = 'service' in c ? c.service : undefined;
    const lastOfService = svc !== undefined && (next === undefined || !('service' in next) || next.service !== svc);
    const moved = svc !== undefined ? tableMoves.get(svc) : undefined;
    if (lastOfService && moved !== undefined && moved > 0 && c.kind !== 'service-removed') {
      lines.push(`    table: ${percent(moved)} of slots move to another realserver`);
    }
  });
  const s = data.summary;
  lines.push(`${s.services.added} service(s) added, ${s.services.removed} removed, ${s.services.edited} edited; `
    + `${s.realservers.added} realserver(s) added, ${s.realservers.removed} removed, ${s.realservers.edited} edited.`);
  return { text: `${lines.join('\n')}\n`, data };
}
