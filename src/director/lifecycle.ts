/**
 * The director's lifecycle: loading and pinning the program and maps on the first attach, XDP
 * links (one pinned link per interface, `link_<ifname>`), detaching, and the way out of a broken
 * state (force detach from the pinned links alone). Everything here holds the lock.
 */
import { existsSync, mkdirSync, readdirSync, rmdirSync, rmSync, unlinkSync, chmodSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import {
  XdpLink, xdpQuery, ifIndex, openPinned, closeFd, progInfo, pinObject,
} from '../native/index.js';
import { StateError, NotAttachedError, BpffsError } from '../errors.js';
import { loadDirector, DEFAULT_SIZES, SMALL_BOX_SIZES, DEFAULT_KNOBS, DIRECTOR_MAPS, type DirectorSizes, type Knobs } from '../dataplane/loader.js';
import { compileDirector } from '../dataplane/compile.js';
import { emptyConfig } from '../model/types.js';
import type { StatePaths } from './paths.js';
import { readSnapshot, writeSnapshot, removeSnapshot, SNAPSHOT_FORMAT, SNAPSHOT_VERSION, type Snapshot } from './snapshot.js';
import { acquireLock } from './lock.js';
import { emptyApplied, acceptStep, type Step } from './plan.js';
import { faultPoint } from './faults.js';
import { MapWriter } from './writer.js';
import { DirectorReader } from './reader.js';
import { acceptedSet, type AcceptedMac, type LinkDesc } from '../dataplane/l2addrs.js';
import type { AttachOptions, InterfaceStatus } from './types.js';
import { VERSION } from '../version.js';
import { ABI_VERSION } from '../abi/generated.js';
import { assertRunsThisAbi, STAGE_PREFIX } from './upgrade.js';
import { attachChained, detachChained, removeChainIfUnused, rootLinks, chainedLive, pinnedChainFd, pinChainOf, occupant } from './chain.js';

export const PROG_PIN = 'prog_lvs_director';
export const LINK_PREFIX = 'link_';

export async function withLock<T>(paths: StatePaths, fn: () => Promise<T> | T): Promise<T> {
  mkdirSync(paths.stateDir, { recursive: true, mode: 0o700 });
  chmodSync(paths.stateDir, 0o700);
  const release = await acquireLock(paths.stateDir);
  try {
    return await fn();
  } finally {
    release();
  }
}

function isBpffs(dir: string): boolean {
  try {
    // BPF_FS_MAGIC: statfs is not in node; a bpffs directory refuses regular files, so test the mount table.
    const mounts = readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' '));
    let best = '';
    let type = '';
    for (const m of mounts) {
      const mp = m[1];
      if (mp && (dir === mp || dir.startsWith(mp.endsWith('/') ? mp : `${mp}/`)) && mp.length >= best.length) {
        best = mp;
        type = m[2] ?? '';
      }
    }
    return type === 'bpf';
  } catch {
    return false;
  }
}

/**
 * Refuses to work on a pin directory that is not on a BPF file system: under `ip netns exec`
 * /sys is remounted without the host's bpffs, so the pins are invisible while the snapshot (in
 * /run) is not, and acting on that view (detach "from nothing", a first attach) would orphan a
 * program that keeps forwarding. Every command that opens the state checks it first.
 */
export function assertBpffs(paths: StatePaths): void {
  const parent = paths.pinDir.replace(/\/[^/]+\/?$/, '') || '/';
  if (!isBpffs(parent)) {
    throw new BpffsError(`${parent} is not a BPF file system here, so the pinned state under ${paths.pinDir} cannot be seen`, {
      hint: 'inside `ip netns exec` /sys is remounted without the host\'s bpffs: use nsenter --net=/run/netns/NS lvs-xdp ... instead; elsewhere mount it: mount -t bpf bpf /sys/fs/bpf',
    });
  }
}

/** Interfaces with a pinned XDP link in `pinDir` (`link_<ifname>`). */
export function pinnedLinks(pinDir: string): string[] {
  return existsSync(pinDir) ? readdirSync(pinDir).filter((f) => f.startsWith(LINK_PREFIX)).map((f) => f.slice(LINK_PREFIX.length)) : [];
}

/** Detaches the XDP link pinned at `pin` (if it still holds one) and removes the pin. */
export function releaseLinkPin(pin: string): void {
  try {
    const link = XdpLink.fromPin(pin);
    try {
      link.detach();
    } catch {
      // the interface is gone: its link went with it
    } finally {
      link.close();
    }
  } catch {
    // a defunct link pin
  }
  unlinkSync(pin);
}

/** After the last detach (lock released): the state directory goes too. */
export function removeStateDir(paths: StatePaths): void {
  try {
    rmSync(paths.stateDir, { recursive: true, force: true });
  } catch {
    // a mount point (or busy): leave the directory, empty
    for (const f of readdirSync(paths.stateDir)) rmSync(`${paths.stateDir}/${f}`, { recursive: true, force: true });
  }
}

/** Removes every pinned object and the snapshot (the last interface went). */
function removeState(paths: StatePaths, only?: ReadonlySet<string>): void {
  if (existsSync(paths.pinDir)) {
    for (const f of readdirSync(paths.pinDir)) if (!only || only.has(f)) unlinkSync(`${paths.pinDir}/${f}`);
    if (readdirSync(paths.pinDir).length === 0) rmdirSync(paths.pinDir);
  }
  removeSnapshot(paths.snapshot);
  rmSync(`${paths.stateDir}/state.msgpack.tmp`, { force: true });
}

/**
 * Brings lvs_l2_addrs to `desired` (the accepted MACs of the attached interfaces, lock held):
 * compared with what the map holds, not with a record of it, so an interrupted write is made
 * good by the next call. Returns the step written, if anything differed.
 */
export function syncAcceptedLocked(writer: MapWriter, desired: readonly AcceptedMac[]): Step | undefined {
  const { current, held } = new DirectorReader(writer.maps).acceptedState(desired.map((a) => a.ifindex));
  const step = acceptStep(current, desired, held);
  if (step) writer.execute([step]);
  return step;
}

/**
 * The same, for the lifecycle's own commands, from links read before the lock was taken (nothing
 * slow runs under it): the set is computed for the interfaces as the snapshot says now, from the
 * links as they were a moment ago. A change of the links in between (a vmac added) is accepted
 * by the next command or `run`'s resync, as any later change is. A director of an older ABI has
 * no accepted-MAC maps (only detach reaches here then): nothing to write.
 */
function syncAcceptedFor(paths: StatePaths, interfaces: readonly string[], links: readonly LinkDesc[]): void {
  if (!L2_MAPS.every((m) => existsSync(`${paths.pinDir}/${m}`))) return;
  const writer = MapWriter.fromPins(paths.pinDir, L2_MAPS);
  try {
    syncAcceptedLocked(writer, acceptedSet(links, interfaces));
  } finally {
    writer.close();
  }
}

const L2_MAPS = ['lvs_l2_ifs', 'lvs_l2_addrs'] as const;

/**
 * Attaches the director to an interface (lock held): loads and pins the program and maps on
 * first use, or attaches the running program to one more interface. Refuses an interface that
 * already has another XDP program unless `force`.
 */
export async function attachLocked(
  paths: StatePaths, ifname: string, opts: AttachOptions, links: readonly LinkDesc[], out: { reattachedFrom?: number } = {},
): Promise<Snapshot> {
  assertBpffs(paths);
  const ifindex = ifIndex(ifname);
  let snap = readSnapshot(paths.snapshot);
  const created = !snap;
  // Another version's program: one more interface is an upgrade's business, not attach's.
  if (snap) assertRunsThisAbi(paths, snap);
  else snap = await create(paths, opts);
  try {
    return await attachLink(paths, snap, ifname, ifindex, opts, links, out);
  } catch (e) {
    // A refused first attach leaves nothing: no loaded program, no pins, no snapshot, and no
    // lvs_chain that create() pinned beside them (unless a root still serves other programs).
    if (created) {
      removeState(paths);
      removeChainIfUnused(paths);
    }
    throw e;
  }
}

/**
 * Whether the pinned link of `ifname` still carries our program on the interface of that name.
 * After the interface was deleted and created again the pin is left holding a defunct link (no
 * device) and the new interface, with a new ifindex, has no program.
 */
function linkIsLive(linkPin: string, ifindex: number): boolean {
  try {
    const link = XdpLink.fromPin(linkPin);
    try {
      return link.ifindex === ifindex && link.mode !== 'unknown';
    } finally {
      link.close();
    }
  } catch {
    return false;
  }
}

async function attachLink(
  paths: StatePaths, snap: Snapshot, ifname: string, ifindex: number, opts: AttachOptions, links: readonly LinkDesc[], out: { reattachedFrom?: number },
): Promise<Snapshot> {
  const progFd = openPinned(`${paths.pinDir}/${PROG_PIN}`);
  try {
    const linkPin = `${paths.pinDir}/${LINK_PREFIX}${ifname}`;
    const known = snap.interfaces[ifname];
    // Sharing by tail calls (src/director/chain.ts): asked for, or the interface runs our root.
    const shared = opts.multiprog || (known?.sharing === 'chain') || occupant(paths, ifname, snap.progId).kind === 'root';
    if (shared) return await attachShared(paths, snap, ifname, ifindex, opts, links, out, progFd);
    if (known && existsSync(linkPin)) {
      if (linkIsLive(linkPin, ifindex)) throw new StateError(`lvs-xdp is already attached to ${ifname}`, { hint: 'detach it first to change the mode' });
      // The interface went away and came back: attach again, keeping the running configuration.
      releaseLinkPin(linkPin);
    }
    if (known) out.reattachedFrom = known.ifindex;
    if (existsSync(linkPin)) unlinkSync(linkPin); // left by a killed attach
    // Our program on the interface without a pinned link: the link of a killed attach (or of
    // the pin just removed), which the kernel releases asynchronously. Give it a moment.
    for (let i = 0; i < 50; i++) {
      const q0 = xdpQuery(ifname);
      if (![q0.driverProgId, q0.skbProgId].includes(snap.progId)) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const q = xdpQuery(ifname);
    const foreign = [q.driverProgId, q.skbProgId, q.hwProgId].find((id) => id && id !== snap.progId);
    if (foreign) {
      if (!opts.force) {
        throw new StateError(`${ifname} already has an XDP program attached (id ${foreign}) that is not this director's`, {
          hint: 'detach it (ip link set dev IFACE xdp off), share the interface with it (--multiprog: it goes in a slot of lvs_chain), or pass --force to replace it',
        });
      }
      detachForeign(ifindex, ifname, foreign);
    }
    // The interface's accepted MACs go in before its link: its first frames are forwarded.
    syncAcceptedFor(paths, [...Object.keys(snap.interfaces), ifname], links);
    faultPoint('before-link');
    let link: XdpLink;
    try {
      link = XdpLink.attach(progFd, ifname, opts.mode ?? (known ? known.mode as AttachOptions['mode'] : 'auto'));
    } catch (e) {
      syncAcceptedFor(paths, Object.keys(snap.interfaces), links); // a refused attach accepts nothing new
      throw e;
    }
    try {
      faultPoint('link-attached');
      link.pin(linkPin);
      faultPoint('link-pinned');
    } finally {
      link.close();
    }
    const writer = MapWriter.fromPins(paths.pinDir);
    try {
      if (known && known.ifindex !== ifindex) writer.removeTxPorts([known.ifindex]);
      writer.execute([{ op: 'tx-ports', ifindexes: [ifindex] }]);
    } finally {
      writer.close();
    }
    snap.interfaces[ifname] = {
      ifindex, mode: link.mode, attachedAt: new Date().toISOString(), ...(link.fallback ? { genericBecause: link.fallback.reason } : {}),
    };
    writeSnapshot(paths.snapshot, snap);
  } finally {
    closeFd(progFd);
  }
  return snap;
}

/** attachLink's way for an interface shared by tail calls: the director goes in its chain slot. */
async function attachShared(
  paths: StatePaths, snap: Snapshot, ifname: string, ifindex: number, opts: AttachOptions, links: readonly LinkDesc[], out: { reattachedFrom?: number }, progFd: number,
): Promise<Snapshot> {
  const known = snap.interfaces[ifname];
  if (known && chainedLive(paths, ifindex, snap.progId).live) throw new StateError(`lvs-xdp is already attached to ${ifname} (sharing it by tail calls)`, { hint: 'detach it first to change the mode' });
  if (known) out.reattachedFrom = known.ifindex;
  syncAcceptedFor(paths, [...Object.keys(snap.interfaces), ifname], links);
  faultPoint('before-link');
  let r;
  try {
    r = await attachChained(paths, progFd, snap.progId, ifname, (opts.mode ?? (known ? known.mode as AttachOptions['mode'] : 'auto')) ?? 'auto', opts.force ?? false,
      (id) => detachForeign(ifindex, ifname, id));
  } catch (e) {
    syncAcceptedFor(paths, Object.keys(snap.interfaces), links);
    throw e;
  }
  const writer = MapWriter.fromPins(paths.pinDir);
  try {
    if (known && known.ifindex !== ifindex) writer.removeTxPorts([known.ifindex]);
    writer.execute([{ op: 'tx-ports', ifindexes: [ifindex] }]);
  } finally {
    writer.close();
  }
  snap.interfaces[ifname] = { ifindex, mode: r.mode, attachedAt: new Date().toISOString(), sharing: 'chain' };
  writeSnapshot(paths.snapshot, snap);
  return snap;
}

/** First attach: load, pin maps and program, write an empty snapshot. */
async function create(paths: StatePaths, opts: AttachOptions): Promise<Snapshot> {
  if (existsSync(paths.pinDir)) {
    // Pins without a snapshot: a killed first attach. Nothing references them; start over.
    for (const f of readdirSync(paths.pinDir)) unlinkSync(`${paths.pinDir}/${f}`);
  } else {
    mkdirSync(paths.pinDir, { mode: 0o700 });
  }
  const sizes: DirectorSizes = { ...(opts.preset === 'small' ? SMALL_BOX_SIZES : DEFAULT_SIZES), ...opts.sizes };
  const knobs: Knobs = { ...DEFAULT_KNOBS, ...opts.knobs };
  // A root that outlived the last director still holds the pinned lvs_chain: this one uses it.
  const chainFd = pinnedChainFd(paths);
  let d;
  try {
    d = await loadDirector({ sizes, knobs, ...(chainFd !== undefined ? { reuse: { lvs_chain: chainFd } } : {}) });
  } finally {
    if (chainFd !== undefined) closeFd(chainFd);
  }
  try {
    pinChainOf(paths, d.progFd);
    for (const m of DIRECTOR_MAPS) {
      pinObject(d.maps[m], `${paths.pinDir}/${m}`);
      faultPoint('map-pinned');
    }
    pinObject(d.progFd, `${paths.pinDir}/${PROG_PIN}`);
    faultPoint('prog-pinned');
    const now = new Date().toISOString();
    const snap: Snapshot = {
      format: SNAPSHOT_FORMAT, version: SNAPSHOT_VERSION, tool: VERSION, createdAt: now, updatedAt: now,
      sizes, knobs, progId: progInfo(d.progFd).id, abiVersion: ABI_VERSION, interfaces: {}, applied: emptyApplied(),
    };
    // Runtime settings from the start, so a director with no services still has sane timeouts.
    const compiled = compileDirector(emptyConfig(), () => undefined, { maxServices: 1, maxReals: 1, maxTableSize: 1 });
    MapWriter.fromLoaded(d).execute([{ op: 'settings', value: compiled.cfg }]);
    writeSnapshot(paths.snapshot, snap);
    return snap;
  } catch (e) {
    for (const f of readdirSync(paths.pinDir)) unlinkSync(`${paths.pinDir}/${f}`);
    throw e;
  } finally {
    d.obj.close();
  }
}

export interface DetachResult { detached: string[]; removed: boolean }

/** Detaches from `ifname` (or every interface), lock held; the last one removes the pinned state. */
export function detachLocked(paths: StatePaths, fallback: Snapshot, links: readonly LinkDesc[], ifname?: string): DetachResult {
  const snap = readSnapshot(paths.snapshot) ?? fallback;
  // Root links count only where the director's slot is set (an attach killed before its snapshot).
  const chained = rootLinks(paths).filter((n) => !snap.interfaces[n] && chainedLive(paths, ifIndexOr(n), snap.progId).live);
  const known = [...new Set([...Object.keys(snap.interfaces), ...pinnedLinks(paths.pinDir), ...chained])];
  if (ifname !== undefined && !known.includes(ifname)) {
    throw new NotAttachedError(`lvs-xdp is not attached to ${ifname}`, { hint: `attached: ${known.join(', ') || 'none'}` });
  }
  const targets = ifname === undefined ? known : [ifname];
  const gone: number[] = [];
  for (const name of targets) {
    const pin = `${paths.pinDir}/${LINK_PREFIX}${name}`;
    if (existsSync(pin)) releaseLinkPin(pin);
    const st = snap.interfaces[name];
    if (st?.sharing === 'chain' || chained.includes(name)) detachChained(paths, name, st?.ifindex, releaseLinkPin);
    if (st) gone.push(st.ifindex);
    delete snap.interfaces[name];
  }
  if (Object.keys(snap.interfaces).length === 0) {
    removeState(paths);
    removeChainIfUnused(paths);
    return { detached: targets, removed: true };
  }
  const writer = MapWriter.fromPins(paths.pinDir, ['lvs_tx_ports']);
  try {
    writer.removeTxPorts(gone);
  } finally {
    writer.close();
  }
  syncAcceptedFor(paths, Object.keys(snap.interfaces), links);
  writeSnapshot(paths.snapshot, snap);
  return { detached: targets, removed: false };
}

/**
 * Detach when the state cannot be opened (corrupt, foreign or newer snapshot, a pinned map
 * removed by hand), lock held: releases the pinned XDP links (all, or `ifname`'s) and, when none
 * is left, removes what lvs-xdp pinned (only its own names) and the snapshot. Reads nothing but
 * the pin directory, so it works whatever state the snapshot is in.
 */
export function forceDetachLocked(paths: StatePaths, ifname?: string): DetachResult {
  const roots = rootLinks(paths);
  const links = [...new Set([...pinnedLinks(paths.pinDir), ...roots])];
  if (ifname !== undefined && !links.includes(ifname)) {
    throw new NotAttachedError(`lvs-xdp is not attached to ${ifname} (no link pinned at ${paths.pinDir})`, { hint: `pinned links: ${links.join(', ') || 'none'}` });
  }
  const targets = ifname === undefined ? links : [ifname];
  for (const name of targets) {
    const pin = `${paths.pinDir}/${LINK_PREFIX}${name}`;
    if (existsSync(pin)) releaseLinkPin(pin);
    if (roots.includes(name)) detachChained(paths, name, undefined, releaseLinkPin);
  }
  // A root that stays for other programs is no longer ours to count.
  const removed = pinnedLinks(paths.pinDir).length === 0 && targets.length === links.length;
  if (removed) {
    const ours = [...DIRECTOR_MAPS, PROG_PIN];
    removeState(paths, new Set<string>([...ours, ...ours.map((n) => `${STAGE_PREFIX}${n}`)]));
    removeChainIfUnused(paths);
  }
  return { detached: targets, removed };
}

/** The interfaces as the kernel sees them now: mode in use, and whether our program is there. */
export function linkStatus(paths: StatePaths, snap: Snapshot): InterfaceStatus[] {
  const interfaces: InterfaceStatus[] = Object.entries(snap.interfaces).map(([name, st]) => {
    if (st.sharing === 'chain') {
      const c = chainedLive(paths, st.ifindex, snap.progId);
      return { name, ifindex: st.ifindex, mode: c.mode === 'none' || c.mode === 'unknown' ? st.mode : c.mode, attachedAt: st.attachedAt, linked: c.live, sharing: 'chain' as const };
    }
    let mode = st.mode;
    let linked = existsSync(`${paths.pinDir}/${LINK_PREFIX}${name}`);
    try {
      const q = xdpQuery(st.ifindex);
      if (q.driverProgId === snap.progId) mode = 'native';
      else if (q.skbProgId === snap.progId) mode = 'generic';
      else linked = false;
    } catch {
      linked = false;
    }
    return { name, ifindex: st.ifindex, mode, attachedAt: st.attachedAt, linked, ...(st.genericBecause ? { genericBecause: st.genericBecause } : {}) };
  });
  // A root link pinned by an attach --multiprog killed before it wrote the snapshot.
  for (const name of rootLinks(paths)) {
    const idx = ifIndexOr(name);
    if (snap.interfaces[name] || idx < 0) continue;
    const c = chainedLive(paths, idx, snap.progId);
    if (c.live) interfaces.push({ name, ifindex: idx, mode: c.mode, attachedAt: 'unknown (attach interrupted; not in the snapshot)', linked: true, sharing: 'chain' });
  }
  // A link pinned by an attach that was killed before it wrote the snapshot.
  for (const name of pinnedLinks(paths.pinDir)) {
    if (snap.interfaces[name]) continue;
    try {
      const link = XdpLink.fromPin(`${paths.pinDir}/${LINK_PREFIX}${name}`);
      interfaces.push({ name, ifindex: link.ifindex, mode: link.mode, attachedAt: 'unknown (attach interrupted; not in the snapshot)', linked: link.mode !== 'unknown' });
      link.close();
    } catch {
      // unreadable pin: detach removes it
    }
  }
  return interfaces;
}

function ifIndexOr(name: string): number {
  try {
    return ifIndex(name);
  } catch {
    return -1;
  }
}

/** The pinned program's identity, or undefined when it cannot be read. */
export function programInfo(paths: StatePaths): { id: number; name: string; tag: string; jitedLen: number } | undefined {
  try {
    const fd = openPinned(`${paths.pinDir}/${PROG_PIN}`);
    try {
      const p = progInfo(fd);
      return { id: p.id, name: p.name, tag: p.tag, jitedLen: p.jitedLen };
    } finally {
      closeFd(fd);
    }
  } catch {
    return undefined;
  }
}

/**
 * --force: removes whatever XDP program the interface carries. A bpf_link attachment (found with
 * bpftool, by ifindex) is detached through the link; a netlink one is switched off with ip.
 */
export function detachForeign(ifindex: number, ifname: string, progId: number): void {
  try {
    // Links are global: match the program (ids are unique) and the ifindex the link reports.
    const links = JSON.parse(execFileSync('bpftool', ['-j', 'link', 'show'], { encoding: 'utf8' })) as { id: number; type: string; prog_id?: number }[];
    for (const l of links.filter((x) => x.type === 'xdp' && x.prog_id === progId)) {
      const link = XdpLink.fromId(l.id);
      try {
        if (link.ifindex === ifindex) link.detach();
      } finally {
        link.close();
      }
    }
  } catch {
    // no bpftool or no links: netlink below
  }
  for (const mode of ['xdpgeneric', 'xdpdrv', 'xdpoffload']) {
    try {
      execFileSync('ip', ['link', 'set', 'dev', ifname, mode, 'off'], { stdio: 'ignore' });
    } catch {
      // not attached in that mode
    }
  }
}

