/**
 * What `status` reports about a running director (interfaces, program, sizes, memory, fill
 * levels, unresolved realservers, drains, accepted MACs), and the small record helpers the
 * facade shares with it.
 */
import { runningSyncDaemons } from '../sync/state.js';
import { readDirectorDrain } from './director-drain.js';
import { DIRECTOR_MAPS } from '../dataplane/loader.js';
import { realId } from '../dataplane/compile.js';
import { serviceId, type DirectorConfig } from '../model/types.js';
import { linkStatus, programInfo, PROG_PIN } from './lifecycle.js';
import { BpfMap, closeFd, openPinned, progMapIds } from '../native/index.js';
import type { DirectorReader } from './reader.js';
import type { DirectorMaps } from './writer.js';
import type { Snapshot } from './snapshot.js';
import type { StatePaths } from './paths.js';
import type { DirectorStatus, MapMemory, MapUsage, StatsSample } from './types.js';
import { VERSION } from '../version.js';

/** Whether `ids` are exactly the keys of `running` (the same drains, the same unresolved realservers). */
export function sameKeys(ids: string[], running: Record<string, unknown> | undefined): boolean {
  return ids.length === Object.keys(running ?? {}).length && ids.every((k) => k in (running ?? {}));
}

/** Entries of a `serviceId/rip` record, with the service and address split back out. */
export function notes<T>(cfg: DirectorConfig, rec: Record<string, T>): { service: string; address: string; v: T }[] {
  const out: { service: string; address: string; v: T }[] = [];
  for (const s of cfg.services) {
    for (const r of s.realservers) {
      const v = rec[realId(s, r)];
      if (v !== undefined) out.push({ service: serviceId(s), address: r.address, v });
    }
  }
  return out;
}

/** Kernel memory of the maps now (fdinfo memlock): each pinned map, plus the lookup tables,
 *  which are maps of their own (lvs_tables' memlock is only its array of references). */
export function mapMemory(paths: StatePaths, maps: DirectorMaps, reader: DirectorReader): MapMemory {
  const usage: MapUsage[] = DIRECTOR_MAPS.map((n) => ({ name: n, maxEntries: maps[n].maxEntries, memlock: maps[n].memlock }));
  // The program's own maps (capture ring, tail-call chain, .rodata / .bss, scratch): not pinned,
  // charged all the same.
  const pinned = new Set(DIRECTOR_MAPS.map((n) => maps[n].info.id));
  try {
    const fd = openPinned(`${paths.pinDir}/${PROG_PIN}`);
    try {
      for (const id of progMapIds(fd)) {
        if (pinned.has(id)) continue;
        const m = BpfMap.fromId(id);
        try {
          usage.push({ name: m.name, maxEntries: m.maxEntries, memlock: m.memlock });
        } finally {
          m.close();
        }
      }
    } finally {
      closeFd(fd);
    }
  } catch {
    // no program pinned (loaded, not attached yet): its maps are the pinned ones
  }
  const tables = reader.tablesMemory();
  return { maps: usage, tables, total: usage.reduce((n, x) => n + x.memlock, tables.memlock) };
}

/** Interfaces, program, sizes, memory and fill levels; `sample`'s connection fill is reused. */
export function directorStatus(paths: StatePaths, snap: Snapshot, maps: DirectorMaps, reader: DirectorReader, sample?: StatsSample): DirectorStatus {
  const interfaces = linkStatus(paths, snap);
  const program = programInfo(paths);
  const mem = mapMemory(paths, maps, reader);
  const st: DirectorStatus = {
    attached: interfaces.length > 0, pinDir: paths.pinDir, stateDir: paths.stateDir, interfaces,
    sizes: snap.sizes, knobs: snap.knobs, services: snap.applied.config.services.length,
    realservers: snap.applied.config.services.reduce((n, s) => n + s.realservers.length, 0),
    connections: sample?.connections ?? reader.fill(),
    memoryBytes: mem.total, maps: mem.maps, tables: mem.tables, version: VERSION,
    createdAt: snap.createdAt, updatedAt: snap.updatedAt,
  };
  if (program) st.program = program;
  if (snap.pending) st.pendingApply = snap.pending.startedAt;
  const unresolved = notes(snap.applied.config, snap.applied.unresolved ?? {}).map(({ service, address, v }) => ({ service, address, since: v.since, problem: v.problem }));
  if (unresolved.length) st.unresolved = unresolved;
  const drains = Object.values(snap.applied.drains ?? {});
  if (drains.length) st.drains = drains.map((d) => ({ service: d.service, ...(d.realserver !== undefined ? { address: d.realserver } : {}), since: d.since }));
  const dd = readDirectorDrain(paths.stateDir);
  if (dd) st.directorDrain = dd;
  const sync = runningSyncDaemons(paths.stateDir);
  if (sync.length) st.sync = sync;
  const names = new Map(Object.entries(snap.interfaces).map(([n, i]) => [i.ifindex, n]));
  st.accepted = reader.accepted().map((a) => ({ ...a, ...(names.has(a.ifindex) ? { interface: names.get(a.ifindex)! } : {}) }));
  return st;
}

