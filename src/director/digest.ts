/**
 * A digest of the lookup tables that directors of one VIP can compare (`lvs-xdp config --digest`,
 * `status`, the lvs_xdp_table_digest_info metric). Directors behind ECMP agree on a flow's
 * realserver when they agree on everything that picks it: the hash seed, each service's hash
 * fields, table size, persistence mask and flags, and what realserver (address, port) each
 * table slot names. Realserver slot indexes and generations are left out: they depend on each
 * director's history of changes, the realserver a slot names does not.
 *
 * Pure: the reader (DirectorReader.tableViews) fills a TablesView from the live maps, and
 * planTables from a plan's compiled tables, so tests can compare histories without maps.
 */
import { createHash } from 'node:crypto';
import { decode, SVC } from '../abi/layout.js';
import { ABI } from '../abi/generated.js';
import { realId, type CompiledDirector } from '../dataplane/compile.js';
import { serviceId } from '../model/types.js';
import type { AppliedState } from './snapshot.js';

/** What a table slot names. `active` is false when the slot's lvs_reals entry is not in use
 *  (deleted, or a drifted map): the data plane drops instead of forwarding. */
export interface SlotReal { address: string; port: number; active: boolean }

export interface ServiceTable {
  service: string;
  scheduler: string;
  tableSize: number;
  /** LVS_HF_* bits the flow hash covers. */
  hashFields: number;
  /** LVS_SVC_F_* (ops, persistence, rotate, gone). */
  flags: number;
  /** Persistence template mask (hex, 16 bytes). */
  persistMask: string;
  persistTimeout: number;
  slots: (SlotReal | null)[];
}

/** marks: the firewall-mark classification entries (markText), sorted; absent when none. */
export interface TablesView { hashSeed: number; services: ServiceTable[]; marks?: string[] }

/** An lvs_fwmarks entry as the digest hashes it: key and value bytes. */
export function markText(key: Buffer, value: Buffer): string {
  return `${key.toString('hex')}=${value.toString('hex')}`;
}

export interface ServiceDigest { service: string; scheduler: string; tableSize: number; digest: string }
export interface TableDigest {
  /** Over the hash seed and every service's digest. */
  digest: string;
  hashSeed: number;
  services: ServiceDigest[];
}

const FORMAT = 'lvs-xdp-tables/1';

const slotText = (r: SlotReal): string => `${r.address}|${r.port}|${r.active ? 1 : 0}`;

/** One service's digest: its scheduling fields, the realservers its slots name (sorted, so the
 *  order realservers were added in does not matter) and slot -> realserver as indexes into them. */
export function serviceDigest(t: ServiceTable): string {
  // Slots of one realserver usually share one object (the readers build one per realserver).
  const texts = new Map<SlotReal, string>();
  for (const s of t.slots) if (s !== null && !texts.has(s)) texts.set(s, slotText(s));
  const palette = [...new Set(texts.values())].sort();
  const at = new Map(palette.map((p, i) => [p, i] as const));
  const index = new Map([...texts].map(([s, x]) => [s, at.get(x)!] as const));
  const slots = new Uint32Array(t.slots.length);
  t.slots.forEach((s, i) => { slots[i] = s === null ? 0xffffffff : index.get(s)!; });
  const head = [FORMAT, t.service, t.scheduler, t.tableSize, t.hashFields, t.flags, t.persistMask, t.persistTimeout, t.slots.length, palette];
  return createHash('sha256').update(JSON.stringify(head)).update(Buffer.from(slots.buffer)).digest('hex');
}

/** The digest of every service and the overall one (services sorted by id). */
export function tablesDigest(v: TablesView): TableDigest {
  const services = v.services
    .map((t) => ({ service: t.service, scheduler: t.scheduler, tableSize: t.tableSize, digest: serviceDigest(t) }))
    .sort((a, b) => (a.service < b.service ? -1 : a.service > b.service ? 1 : 0));
  // Marks join the overall digest only when there are any: a director without marks keeps the
  // digest it had before marks existed (directors of both versions compare equal).
  const head: unknown[] = [FORMAT, v.hashSeed >>> 0, services.map((s) => [s.service, s.digest])];
  if (v.marks?.length) head.push(['marks', v.marks]);
  const digest = createHash('sha256').update(JSON.stringify(head)).digest('hex');
  return { digest, hashSeed: v.hashSeed >>> 0, services };
}

/** index -> (address, port) of the realservers an allocation names, from the configuration. */
export function realsByIndex(applied: Pick<AppliedState, 'config' | 'allocation'>): Map<number, { address: string; port: number }> {
  const out = new Map<number, { address: string; port: number }>();
  for (const s of applied.config.services) {
    for (const r of s.realservers) {
      const a = applied.allocation.reals[realId(s, r)];
      if (a) out.set(a.index, { address: r.address, port: r.port });
    }
  }
  return out;
}

/**
 * The tables a plan writes, as directors compare them: every service of `compiled` (the plan's
 * target, built from `target`'s configuration and allocation), slot -> realserver.
 */
export function planTables(target: Pick<AppliedState, 'config' | 'allocation'>, compiled: CompiledDirector, hashSeed = target.config.settings?.hashSeed ?? 0): TablesView {
  const byIndex = realsByIndex(target);
  const scheduler = new Map(target.config.services.map((s) => [serviceId(s), s.scheduler] as const));
  const made = new Map<number, SlotReal>();
  const slot = (i: number): SlotReal => {
    let x = made.get(i);
    if (!x) {
      const r = byIndex.get(i);
      made.set(i, (x = r ? { ...r, active: true } : { address: `index ${i}`, port: 0, active: false }));
    }
    return x;
  };
  const services = compiled.services.map((s): ServiceTable => {
    const v = decode(SVC, s.value(0));
    return {
      service: s.id,
      scheduler: scheduler.get(s.id) ?? '?',
      tableSize: v.table_size as number,
      hashFields: v.hash_fields as number,
      flags: v.flags as number,
      persistMask: Buffer.from(v.persist_mask as Uint8Array).toString('hex'),
      persistTimeout: v.persist_timeout as number,
      slots: Array.from(s.table, (i) => (i === ABI.LVS_REAL_NONE ? null : slot(i))),
    };
  });
  const marks = compiled.marks.map((m) => markText(m.key, m.value)).sort();
  return { hashSeed, services, ...(marks.length ? { marks } : {}) };
}

/** The digest as `config --digest` prints it. */
export function formatDigest(d: TableDigest): string {
  const lines = [`tables ${d.digest} (hash seed ${d.hashSeed}, ${d.services.length} service${d.services.length === 1 ? '' : 's'})`];
  for (const s of d.services) lines.push(`  ${s.digest}  ${s.service} ${s.scheduler} ${s.tableSize} slots`);
  return `${lines.join('\n')}\n`;
}
