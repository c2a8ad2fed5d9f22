/**
 * Upgrade in place: this build's data plane takes over a running director without losing its
 * configuration or its connection table.
 *
 * Under the director's lock, the running program (its ABI version, read from the program; its
 * pinned maps' type, key, value and max_entries, and the BTF layouts of their structs) is compared
 * with this build's object loaded with the running sizes and knobs. Maps whose definition is
 * unchanged are reused as they are (their contents carry over untouched). When a configuration
 * map changed, all of them (services, tables, reals, cfg, VIP filter, tx ports) get new maps,
 * rebuilt from the snapshot's applied configuration through a plan against an empty running state
 * that keeps the running allocation: realserver slots and generations stay, so every connection
 * entry still names the right realserver. A changed dynamic map (connections, persistence,
 * fragments) or per-CPU counter map gets a new map, filled field by field by name from the BTF of
 * the running map and of the new object; a field that cannot be carried over (gone, or narrower)
 * refuses the upgrade before anything is written.
 *
 * Nothing the running program uses is written before the link switch: the new maps and program
 * are staged under `<pinDir>/upgrade_<name>`, the snapshot records the staged upgrade, then every
 * pinned XDP link switches to the new program (bpf_link_update: atomic, no packet sees no
 * program), connection entries the old program made meanwhile are copied across, the staged pins
 * replace the live ones (rename), and the snapshot commits. A process killed before the record
 * leaves the old program running with its state (the staged pins are discarded by the next
 * upgrade); killed after it, `lvs-xdp upgrade` completes the recorded upgrade, and every other
 * command refuses until then.
 */
import { existsSync, readdirSync, renameSync, unlinkSync } from 'node:fs';
import { chainDir, CHAIN_MAP } from './chain.js';
import { BpfMap, BpfObject, XdpLink, closeFd, openPinned, pinObject, progInfo, MapType } from '../native/index.js';
import { StateError, NotAttachedError } from '../errors.js';
import { BtfJson } from '../abi/btf.js';
import { runningAbiVersion } from '../abi/running.js';
import { ABI_VERSION, DIRECTOR_SKELETON, type DirectorMap } from '../abi/generated.js';
import { loadGlobals, mapSizes, type MapSpec } from '../abi/skeleton.js';
import { checkAbi, DIRECTOR_MAPS, DIRECTOR_OBJECT, newSynRecvKey, runningSynRecvKey, synRecvKeyGlobals } from '../dataplane/loader.js';
import type { Limits } from '../dataplane/compile.js';
import { buildPlan, emptyApplied, ghostSteps } from './plan.js';
import { MapWriter, type DirectorMaps } from './writer.js';
import {
  SCALARS, btfLayout, counterIndex, dynamicConv, fieldMap, migrateMap, objLayout, sameLayout, scalarLayout, type MapConversion, type StructLayout,
} from './migrate.js';
import { DirectorReader } from './reader.js';
import { recoverPending, compileView, recordTarget } from './transaction.js';
import { readSnapshot, writeSnapshot, type AppliedState, type Snapshot } from './snapshot.js';
import { PROG_PIN, LINK_PREFIX, pinnedLinks, withLock, syncAcceptedLocked } from './lifecycle.js';
import { readLinks } from './neigh.js';
import { acceptedSet, type LinkDesc } from '../dataplane/l2addrs.js';
import { faultPoint } from './faults.js';
import type { StatePaths } from './paths.js';
import { VERSION } from '../version.js';

/** Staged pins of an upgrade in progress: `<pinDir>/upgrade_<map>` and `upgrade_prog_lvs_director` (bpffs refuses dots in names). */
export const STAGE_PREFIX = 'upgrade_';

/** Rebuilt from the snapshot's configuration when any of them changes layout (all together). */
const CONFIG_MAPS: ReadonlySet<DirectorMap> = new Set<DirectorMap>(['lvs_services', 'lvs_tables', 'lvs_reals', 'lvs_cfg', 'lvs_vip_filter', 'lvs_tx_ports', 'lvs_fwmarks', 'lvs_dests']);
/** Filled from the interfaces (their accepted MACs), not from the configuration nor the old maps. */
const L2_MAPS: ReadonlySet<DirectorMap> = new Set<DirectorMap>(['lvs_l2_ifs', 'lvs_l2_addrs']);
/** Hash maps the data plane fills while it runs: copied again after the switch (catch-up). */
const DYNAMIC_MAPS: ReadonlySet<DirectorMap> = new Set<DirectorMap>(['lvs_conns', 'lvs_persist', 'lvs_frags']);

/** An upgrade staged and recorded in the snapshot, not yet completed. */
export interface PendingUpgrade {
  startedAt: string;
  from: { tool: string; abi?: number; progId: number };
  to: { tool: string; abi: number; progId: number };
  /** Names staged under STAGE_PREFIX: the program pin and every new map. */
  staged: string[];
  /** Dynamic maps migrated field by field (their entries made meanwhile are copied after the switch). */
  migrated: string[];
  /** The applied state as written into the new configuration maps. */
  applied: AppliedState;
  maps: MapAction[];
  notes: string[];
}

/** One upgrade done in place, as the snapshot keeps it. */
export interface UpgradeRecord {
  at: string;
  from: { tool: string; abi?: number; progId: number };
  to: { tool: string; abi: number; progId: number };
  maps: MapAction[];
  notes: string[];
}

export interface MapAction {
  name: string;
  /** reuse: the running map as it is; rebuild: from the configuration (the accepted MACs: from
   *  the interfaces); migrate: field by field; create: a map the running director does not have. */
  action: 'reuse' | 'rebuild' | 'migrate' | 'create';
  why?: string;
  /** Entries carried over (migrate). */
  entries?: number;
}

export interface UpgradeResult {
  /** current: already runs this build; upgraded; resumed: an interrupted upgrade completed; planned: dry run. */
  status: 'current' | 'upgraded' | 'resumed' | 'planned';
  from: { tool: string; abi?: number; progId: number };
  to: { tool: string; abi: number; progId?: number };
  maps: MapAction[];
  links: string[];
  notes: string[];
}

// ---- the running director ---------------------------------------------------------------------

/** The running program's ABI version: recorded in the snapshot, else read from the program. */
function runningAbi(paths: StatePaths, snap: Snapshot): number | undefined {
  if (snap.abiVersion !== undefined) return snap.abiVersion;
  const fd = openPinned(`${paths.pinDir}/${PROG_PIN}`);
  try {
    return runningAbiVersion(fd);
  } finally {
    closeFd(fd);
  }
}

/**
 * Refuses a director that this build must not write to: one whose program has another ABI
 * version (its maps have other layouts), or one with an upgrade interrupted half-way. Snapshots
 * of lvs-xdp before upgrades do not record the version: it is read from the program once and
 * kept in memory (the next snapshot write records it).
 */
export function assertRunsThisAbi(paths: StatePaths, snap: Snapshot): void {
  if (snap.upgrade) {
    throw new StateError(`an upgrade to lvs-xdp ${snap.upgrade.to.tool} (data plane ABI ${snap.upgrade.to.abi}) was interrupted (started ${snap.upgrade.startedAt})`, {
      hint: 'complete it with `lvs-xdp upgrade` (the data plane forwards meanwhile)',
    });
  }
  const abi = runningAbi(paths, snap);
  if (abi === undefined || abi === ABI_VERSION) {
    if (abi !== undefined) snap.abiVersion = abi;
    return;
  }
  throw new StateError(
    `the running director is lvs-xdp ${snap.tool} with data plane ABI ${abi}; this lvs-xdp (${VERSION}) writes ABI ${ABI_VERSION} layouts and does not touch it`, {
      hint: `take it over with \`lvs-xdp upgrade\` (keeps the configuration and the connection table), or keep using lvs-xdp ${snap.tool}`,
    });
}

interface Inspection {
  obj: BpfObject;
  actions: MapAction[];
  /** Field maps of migrated maps: key and value (undefined: bytes as they are). */
  conv: Map<string, MapConversion>;
  problems: string[];
  notes: string[];
  abi?: number;
}

function describeDef(d: { type: number; keySize: number; valueSize: number; maxEntries: number }): string {
  const t = Object.entries(MapType).find(([, v]) => v === d.type)?.[0] ?? String(d.type);
  return `${t} key ${d.keySize} value ${d.valueSize} max ${d.maxEntries}`;
}

/**
 * The running program's lvs_synrecv key (bpf/lvs_synrecv.h), for the new program: with another
 * key every SYN_RECV way in lvs_synrecv (reused as it is) would sit in another flow's bucket. A
 * program built before the key (it hashed with hash_seed) gets a new one, noted.
 */
function carriedSynRecvKey(paths: StatePaths, notes: string[]): Buffer {
  const fd = openPinned(`${paths.pinDir}/${PROG_PIN}`);
  let key: Buffer | undefined;
  try {
    key = runningSynRecvKey(fd);
  } finally {
    closeFd(fd);
  }
  if (key) return key;
  notes.push('the running program has no SYN_RECV bucket key of its own: a new one is drawn (handshakes in flight are strays at their ACK, as after an eviction)');
  return newSynRecvKey();
}

/**
 * Opens this build's object with the running sizes, knobs and lvs_synrecv key and compares every
 * pinned map with it. Reads only: the caller closes `obj`.
 */
function inspect(paths: StatePaths, snap: Snapshot, objectPath: string): Inspection {
  const obj = BpfObject.inspect(objectPath);
  try {
    checkAbi(obj, objectPath);
    const notes: string[] = [];
    const globals = { ...loadGlobals(DIRECTOR_SKELETON, { ...snap.knobs }, { ...snap.sizes }), ...synRecvKeyGlobals(carriedSynRecvKey(paths, notes)) };
    obj.configure({ globals, maxEntries: mapSizes(DIRECTOR_SKELETON, { ...snap.sizes }) });
    const actions: MapAction[] = [];
    const conv: Inspection['conv'] = new Map();
    const problems: string[] = [];
    const btfs = new Map<number, BtfJson>();
    const oldBtf = (id: number): BtfJson => {
      let b = btfs.get(id);
      if (!b) btfs.set(id, (b = new BtfJson({ id })));
      return b;
    };
    const specs = DIRECTOR_SKELETON.maps.filter((m) => !m.private);
    const layoutsOf = (spec: MapSpec, part: 'key' | 'value', oldSize: number, btfId: number): { old?: StructLayout; new?: StructLayout } => {
      const t = spec[part];
      if (t in SCALARS) return { old: scalarLayout(oldSize), new: scalarLayout(SCALARS[t]!) };
      return { old: btfId ? btfLayout(oldBtf(btfId), t) : undefined, new: objLayout(obj, t) };
    };
    let configChanged = false;
    const changed = new Map<string, string>();
    const missing = new Set<string>();
    for (const spec of specs) {
      // A map this build added (ABI 2: lvs_l2_ifs and lvs_l2_addrs, created and filled with the
      // accepted MACs; lvs_strays, created empty; ABI 5: lvs_synrecv, created empty: the old
      // director's SYN_RECV entries stay in lvs_conns, where this one still finds them; a
      // configuration map, rebuilt with the others).
      if (!existsSync(`${paths.pinDir}/${spec.name}`)) {
        missing.add(spec.name);
        if (CONFIG_MAPS.has(spec.name as DirectorMap)) configChanged = true;
        continue;
      }
      const old = BpfMap.fromPin(`${paths.pinDir}/${spec.name}`);
      try {
        const nd = obj.mapDef(spec.name);
        const od = old.info;
        const diffs: string[] = [];
        if (od.type !== nd.type || od.keySize !== nd.keySize || od.valueSize !== nd.valueSize || od.maxEntries !== nd.maxEntries) {
          diffs.push(`${describeDef(od)} -> ${describeDef(nd)}`);
        }
        for (const part of ['key', 'value'] as const) {
          const l = layoutsOf(spec, part, part === 'key' ? od.keySize : od.valueSize, od.btfId);
          if (!(spec[part] in SCALARS) && (!l.old || !l.new || !sameLayout(l.old, l.new))) diffs.push(`struct ${spec[part]} layout`);
        }
        if (!diffs.length) continue;
        changed.set(spec.name, diffs.join('; '));
        if (L2_MAPS.has(spec.name as DirectorMap)) continue;
        if (CONFIG_MAPS.has(spec.name as DirectorMap)) {
          configChanged = true;
          continue;
        }
        // A dynamic map or a counter map: carried over field by field.
        if (od.type !== nd.type) {
          problems.push(`map ${spec.name}: type ${describeDef(od)} -> ${describeDef(nd)} cannot be carried over`);
          continue;
        }
        const c: MapConversion = {};
        for (const part of ['key', 'value'] as const) {
          const l = layoutsOf(spec, part, part === 'key' ? od.keySize : od.valueSize, od.btfId);
          if (!l.old || !l.new) {
            problems.push(`map ${spec.name}: struct ${spec[part]} is not in the ${l.old ? 'new object' : 'running program'}'s BTF`);
            continue;
          }
          if (sameLayout(l.old, l.new)) continue;
          const f = fieldMap(l.old, l.new, `map ${spec.name}, struct ${spec[part]}`);
          problems.push(...f.problems);
          if (f.map) c[part] = f.map;
        }
        if (spec.name === 'lvs_counters') c.index = od.btfId ? counterIndex(oldBtf(od.btfId)) : undefined;
        conv.set(spec.name, c);
      } finally {
        old.close();
      }
    }
    for (const spec of specs) {
      const why = changed.get(spec.name);
      if (missing.has(spec.name)) {
        const fill = L2_MAPS.has(spec.name as DirectorMap) ? 'filled with the attached interfaces\' accepted MACs'
          : CONFIG_MAPS.has(spec.name as DirectorMap) ? 'filled from the configuration' : 'starts empty';
        actions.push({ name: spec.name, action: 'create', why: `not in the running director: ${fill}` });
      } else if (why && L2_MAPS.has(spec.name as DirectorMap)) {
        actions.push({ name: spec.name, action: 'rebuild', why: `${why}: filled with the attached interfaces' accepted MACs` });
      } else if (configChanged && CONFIG_MAPS.has(spec.name as DirectorMap)) {
        actions.push({ name: spec.name, action: 'rebuild', why: why ?? 'rebuilt with the other configuration maps' });
      } else if (why) {
        actions.push({ name: spec.name, action: 'migrate', why });
      } else {
        actions.push({ name: spec.name, action: 'reuse' });
      }
    }
    return { obj, actions, conv, problems, notes };
  } catch (e) {
    obj.close();
    throw e;
  }
}

// ---- the upgrade -----------------------------------------------------------------------------

export interface UpgradeOptions {
  dryRun?: boolean;
  /** The object to take over with (default: this build's bpf/lvs_director.o). */
  objectPath?: string;
  /** The links of the namespace (`ip -j -d link`), read before the lock: the accepted MACs of
   *  new accepted-MAC maps are computed from them for the interfaces the snapshot names. */
  links?: readonly LinkDesc[];
}

/** Runs under the lock: compare, refuse or load and stage, record, switch, commit. */
export async function upgradeLocked(paths: StatePaths, limitsOf: (s: Snapshot) => Limits, opts: UpgradeOptions = {}): Promise<UpgradeResult> {
  const snap = readSnapshot(paths.snapshot);
  if (!snap) throw new NotAttachedError(`no director is attached (no state at ${paths.snapshot})`, { hint: 'attach one with `lvs-xdp attach IFACE`' });
  if (snap.upgrade) {
    if (opts.dryRun) return { status: 'planned', from: snap.upgrade.from, to: snap.upgrade.to, maps: snap.upgrade.maps, links: [], notes: ['an interrupted upgrade is recorded: `lvs-xdp upgrade` completes it'] };
    process.stderr.write(`lvs-xdp: completing the upgrade that was interrupted at ${snap.upgrade.startedAt}\n`);
    return { ...completeUpgrade(paths, snap), status: 'resumed' };
  }
  const shared = Object.entries(snap.interfaces).filter(([, i]) => i.sharing === 'chain').map(([n]) => n);
  if (shared.length) {
    // The new program would need the chain slots switched with the links (src/director/chain.ts).
    throw new StateError(`an upgrade in place does not yet take over interfaces shared by tail calls (${shared.join(', ')}); nothing was changed`, {
      hint: 'detach those interfaces, upgrade, and attach them again with --multiprog',
    });
  }
  const abi = runningAbi(paths, snap);
  if (snap.pending) {
    if (abi !== ABI_VERSION) {
      throw new StateError(`an apply of lvs-xdp ${snap.tool} was interrupted (started ${snap.pending.startedAt}); its steps are in that version's layouts`, {
        hint: `complete it with lvs-xdp ${snap.tool} (any command, e.g. \`lvs-xdp -S -n\`), then upgrade`,
      });
    }
    if (!opts.dryRun) {
      const writer = MapWriter.fromPins(paths.pinDir);
      try {
        recoverPending(paths, snap, writer, new DirectorReader(writer.maps), limitsOf(snap));
      } finally {
        writer.close();
      }
    }
  }
  // Pins of an upgrade killed before it was recorded: nothing refers to them.
  for (const f of existsSync(paths.pinDir) ? readdirSync(paths.pinDir) : []) if (f.startsWith(STAGE_PREFIX) && !opts.dryRun) unlinkSync(`${paths.pinDir}/${f}`);

  const from = { tool: snap.tool, ...(abi !== undefined ? { abi } : {}), progId: snap.progId };
  const ins = inspect(paths, snap, opts.objectPath ?? DIRECTOR_OBJECT);
  const { obj } = ins;
  try {
    if (ins.problems.length) {
      throw new StateError(`lvs-xdp ${VERSION} cannot take over this director (lvs-xdp ${snap.tool}, ABI ${abi ?? 'unknown'}) without losing state; nothing was changed:\n  ${ins.problems.join('\n  ')}`, {
        hint: `keep running lvs-xdp ${snap.tool}, or detach and attach with this version (\`lvs-xdp detach\`, \`lvs-xdp attach IFACE\`, \`lvs-xdp -R < rules\` from \`lvs-xdp -S -n\` of the old version): the connection table is lost and established flows are scheduled anew`,
      });
    }
    const reused = new Map<string, BpfMap>();
    for (const a of ins.actions) if (a.action === 'reuse') reused.set(a.name, BpfMap.fromPin(`${paths.pinDir}/${a.name}`));
    // The pinned lvs_chain stays the director's (src/director/chain.ts): a root may run it.
    const chainPin = `${chainDir(paths)}/${CHAIN_MAP}`;
    if (existsSync(chainPin) && obj.mapNames().includes(CHAIN_MAP)) reused.set(CHAIN_MAP, BpfMap.fromPin(chainPin));
    try {
      obj.configure({ reuseMaps: Object.fromEntries(reused) });
      await obj.load();
    } finally {
      for (const m of reused.values()) m.close();
    }
    const progFd = obj.progFd(DIRECTOR_SKELETON.program);
    const oldProg = openPinned(`${paths.pinDir}/${PROG_PIN}`);
    let runningTag: string;
    try {
      runningTag = progInfo(oldProg).tag;
    } finally {
      closeFd(oldProg);
    }
    const newInfo = progInfo(progFd);
    const allReused = ins.actions.every((a) => a.action === 'reuse');
    const to = { tool: VERSION, abi: ABI_VERSION, progId: newInfo.id };
    if (allReused && abi === ABI_VERSION && newInfo.tag === runningTag) {
      return { status: 'current', from, to: { tool: VERSION, abi: ABI_VERSION, progId: snap.progId }, maps: ins.actions, links: pinnedLinks(paths.pinDir), notes: [] };
    }
    if (allReused) ins.notes.push('every map is reused as it is: only the program changes');
    if (opts.dryRun) {
      return { status: 'planned', from, to: { tool: VERSION, abi: ABI_VERSION }, maps: ins.actions, links: pinnedLinks(paths.pinDir), notes: ins.notes };
    }

    // Fill the new maps. The running program does not see them until its links switch.
    const maps = Object.fromEntries(DIRECTOR_MAPS.map((m) => [m, obj.map(m)])) as DirectorMaps;
    let applied = snap.applied;
    if (ins.actions.some((a) => a.action === 'rebuild')) {
      // The running allocation is kept: slots and generations, so connection entries stay valid.
      // Unresolved realservers compile as they run (no slots, no MAC); ghosts (deleted services
      // and realservers whose connections may still live) are written again after the plan.
      const cur = snap.applied;
      const view = compileView(cur.config, new Map(Object.entries(cur.l2)), new Set(Object.keys(cur.unresolved ?? {})));
      const plan = recordTarget(buildPlan({
        running: emptyApplied(), desired: view.config, l2: view.l2,
        tunnel: cur.tunnel ?? {}, limits: limitsOf(snap), allocation: cur.allocation, now: Date.now(),
        ...(cur.sync ? { sync: cur.sync } : {}), // lvs_cfg rebuilt: sync events stay as they were
      }), cur.config, cur.unresolved, cur.drains);
      if (cur.ghosts) plan.target.ghosts = cur.ghosts;
      // Statistics are not zeroed: the slots are the running ones, their counters carry over.
      // The attached interfaces are egress ports too (attach adds them; plans do not).
      const steps = [
        ...plan.steps.filter((s) => s.op !== 'zero'),
        ...ghostSteps(cur.ghosts, plan.compiled?.services.map((s) => s.key) ?? []),
        { op: 'tx-ports' as const, ifindexes: Object.values(snap.interfaces).map((i) => i.ifindex) },
      ];
      new MapWriter(maps).execute(steps, {
        tableOf: (service) => {
          const s = plan.compiled?.services.find((x) => x.id === service);
          if (!s) throw new Error(`internal: the plan has no table for ${service}`);
          return s.table;
        },
      });
      applied = plan.target;
    }
    // Accepted MACs in a new lvs_l2_ifs / lvs_l2_addrs before any link switches: the new program
    // forwards only frames to them, so an empty map would pass every frame for a moment.
    if (ins.actions.some((a) => L2_MAPS.has(a.name as DirectorMap) && a.action !== 'reuse')) {
      const links = opts.links ?? readLinks();
      syncAcceptedLocked(new MapWriter(maps), acceptedSet(links, Object.keys(snap.interfaces)));
    }
    const migrated: string[] = [];
    for (const a of ins.actions) {
      if (a.action !== 'migrate') continue;
      const old = BpfMap.fromPin(`${paths.pinDir}/${a.name}`);
      try {
        a.entries = migrateMap(a.name, old, maps[a.name as DirectorMap], ins.conv.get(a.name)!, ins.notes);
      } finally {
        old.close();
      }
      if (DYNAMIC_MAPS.has(a.name as DirectorMap)) migrated.push(a.name);
    }
    faultPoint('upgrade-filled');

    // Stage: the new program and maps pinned beside the live ones.
    const staged: string[] = [];
    for (const a of ins.actions) {
      if (a.action === 'reuse') continue;
      pinObject(maps[a.name as DirectorMap].fd, `${paths.pinDir}/${STAGE_PREFIX}${a.name}`);
      staged.push(a.name);
    }
    pinObject(progFd, `${paths.pinDir}/${STAGE_PREFIX}${PROG_PIN}`);
    staged.push(PROG_PIN);
    faultPoint('upgrade-staged');
    snap.upgrade = { startedAt: new Date().toISOString(), from, to, staged, migrated, applied, maps: ins.actions, notes: ins.notes };
    writeSnapshot(paths.snapshot, snap);
    faultPoint('upgrade-recorded');
  } finally {
    obj.close();
  }
  return completeUpgrade(paths, snap);
}

/**
 * Completes a recorded upgrade (idempotent: a second run after a kill does what is left): every
 * pinned link to the staged program, connection entries made by the old program meanwhile copied
 * across, the staged pins renamed over the live ones, the snapshot committed.
 */
function completeUpgrade(paths: StatePaths, snap: Snapshot): UpgradeResult {
  const up = snap.upgrade!;
  const stagedProg = `${paths.pinDir}/${STAGE_PREFIX}${PROG_PIN}`;
  const progFd = openPinned(existsSync(stagedProg) ? stagedProg : `${paths.pinDir}/${PROG_PIN}`);
  const links: string[] = [];
  try {
    if (progInfo(progFd).id !== up.to.progId) throw new StateError(`the staged program of the interrupted upgrade is not program ${up.to.progId}`, { hint: '`lvs-xdp detach` and attach again' });
    for (const name of pinnedLinks(paths.pinDir)) {
      const link = XdpLink.fromPin(`${paths.pinDir}/${LINK_PREFIX}${name}`);
      try {
        const info = link.info();
        // A link whose interface went away is defunct: detach removes its pin.
        if (!info.ifindex) continue;
        // One bpf_link_update per interface: the old program until then, the new one after.
        if (info.progId !== up.to.progId) link.update(progFd);
      } finally {
        link.close();
      }
      links.push(name);
      faultPoint('upgrade-link-switched');
    }
  } finally {
    closeFd(progFd);
  }
  // Entries the old program made between the copy and its switch (only those the new map lacks:
  // the new program's own entries are newer).
  for (const name of up.migrated) {
    const staged = `${paths.pinDir}/${STAGE_PREFIX}${name}`;
    if (!existsSync(staged)) continue;
    const old = BpfMap.fromPin(`${paths.pinDir}/${name}`);
    const neu = BpfMap.fromPin(staged);
    try {
      const conv = dynamicConv(old, neu, name);
      if (conv) migrateMap(name, old, neu, conv, [], true);
    } finally {
      old.close();
      neu.close();
    }
  }
  faultPoint('upgrade-caught-up');
  for (const name of up.staged) {
    const staged = `${paths.pinDir}/${STAGE_PREFIX}${name}`;
    if (!existsSync(staged)) continue;
    // rename(2) on bpffs replaces the live pin in one step.
    renameSync(staged, `${paths.pinDir}/${name}`);
    faultPoint('upgrade-pin-replaced');
  }
  const record: UpgradeRecord = { at: new Date().toISOString(), from: up.from, to: up.to, maps: up.maps, notes: up.notes };
  snap.progId = up.to.progId;
  snap.abiVersion = up.to.abi;
  snap.tool = up.to.tool;
  snap.applied = up.applied;
  snap.upgrades = [...(snap.upgrades ?? []), record];
  delete snap.upgrade;
  writeSnapshot(paths.snapshot, snap);
  faultPoint('upgrade-committed');
  return { status: 'upgraded', from: up.from, to: up.to, maps: up.maps, links, notes: up.notes };
}

/** `lvs-xdp upgrade`: takes the lock, then upgradeLocked. */
export async function upgrade(paths: StatePaths, limitsOf: (s: Snapshot) => Limits, opts: UpgradeOptions = {}): Promise<UpgradeResult> {
  // `ip` runs before the lock (nothing slow under it); the set is computed under it.
  const links = opts.links ?? (opts.dryRun ? [] : readLinks());
  return withLock(paths, () => upgradeLocked(paths, limitsOf, { ...opts, links }));
}
