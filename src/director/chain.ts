/**
 * Sharing an interface with other XDP programs. The standard is libxdp's dispatcher, which
 * needs freplace (BPF_PROG_TYPE_EXT) programs; where the kernel refuses those (probeDispatcher),
 * lvs-xdp shares by tail calls only: the interface runs lvs_root (bpf/lvs_root.bpf.c), which
 * tail-calls the interface's slots of one program array, lvs_chain (bpf/lvs_chain.h): a program
 * before the director (a firewall), the director, and a program after it that gets what the
 * director passes.
 *
 * Pins, beside the director's and outliving it while other programs use the chain:
 *   <pin dir>-chain/lvs_chain       the program array (the director's own map: its loads reuse it)
 *   <pin dir>-chain/prog_lvs_root   the root program
 *   <pin dir>-chain/link_<ifname>   the root's XDP link on each interface that shares
 * The director's slot is written before the root is attached (a root with an empty slot passes
 * everything to the kernel), and cleared before the root is removed; the director is told it is
 * chained (markChained) before its slot is written, and only then tries LVS_CHAIN_AFTER.
 */
import { existsSync, mkdirSync, readdirSync, rmdirSync, unlinkSync } from 'node:fs';
import { inInstall } from '../install-root.js';
import {
  BpfMap, BpfObject, XdpLink, closeFd, ifIndex, mapInfo, openPinned, pinObject, progFdById, progInfo, progMapIds, probeProgType, withProgramMap, xdpQuery,
  type XdpMode,
} from '../native/index.js';
import { StateError } from '../errors.js';
import { faultPoint } from './faults.js';
import type { StatePaths } from './paths.js';

export const CHAIN_MAP = 'lvs_chain';
/** bpf/lvs_chain.h's lvs_chain_on: the map libbpf makes of its data section (named as it). */
export const CHAIN_ON_MAP = '.data.lvs_chain';
export const ROOT_PIN = 'prog_lvs_root';
export const ROOT_LINK_PREFIX = 'link_';
/** bpf/lvs_chain.h: slot = ifindex * positions + position. */
export const CHAIN = { ifs: 4096, positions: 4, before: 0, lvs: 1, after: 2 } as const;
export const ROOT_OBJECT = inInstall('bpf', 'lvs_root.o');
/** The program libxdp attaches to an interface it shares (xdp-dispatcher.o's). */
export const DISPATCHER_PROG = 'xdp_dispatcher';
const BPF_PROG_TYPE_EXT = 28;
const POSITION_NAMES = ['before', 'lvs-xdp', 'after'] as const;

export function chainDir(paths: StatePaths): string {
  return `${paths.pinDir.replace(/\/+$/, '')}-chain`;
}

/** The pinned lvs_chain for the director's load to reuse (so a root that outlived a director
 *  serves the next one), or undefined: the load creates it and pinChainOf() pins it. */
export function pinnedChainFd(paths: StatePaths): number | undefined {
  const pin = `${chainDir(paths)}/${CHAIN_MAP}`;
  return existsSync(pin) ? openPinned(pin) : undefined;
}

/** Pins the director program's lvs_chain (lock held; a no-op when the pin is its map already). */
export function pinChainOf(paths: StatePaths, progFd: number): void {
  const dir = chainDir(paths);
  const pin = `${dir}/${CHAIN_MAP}`;
  const ids = progMapIds(progFd);
  let ownId: number | undefined;
  for (const id of ids) {
    const m = BpfMap.fromId(id);
    try {
      if (mapInfo(m.fd).name === CHAIN_MAP) {
        ownId = id;
        if (!existsSync(pin)) {
          mkdirSync(dir, { recursive: true, mode: 0o700 });
          pinObject(m.fd, pin);
        }
      }
    } finally {
      m.close();
    }
  }
  if (ownId === undefined) throw new StateError('the running director has no lvs_chain map (an lvs-xdp before interface sharing)', { hint: 'lvs-xdp upgrade, or detach and attach again' });
  const pinned = BpfMap.fromPin(pin);
  try {
    if (mapInfo(pinned.fd).id !== ownId) {
      throw new StateError(`${pin} is not the running director's lvs_chain (left by an earlier director whose root still runs)`, {
        hint: `detach the programs sharing through it (bpftool map dump pinned ${pin}), remove ${dir}, then attach again`,
      });
    }
  } finally {
    pinned.close();
  }
}

/**
 * Tells the director (progFd) that a root may run it (bpf/lvs_chain.h: lvs_chain_on), so what it
 * passes goes on to LVS_CHAIN_AFTER; before that it passes to the kernel without trying the
 * slot. Set before the director's slot is written (attachChained) and never cleared (see the
 * header for why). A director built before the switch has no such map: it always tries the slot.
 */
export function markChained(progFd: number): void {
  withProgramMap(progFd, (name) => name === CHAIN_ON_MAP, (m) => {
    const v = Buffer.alloc(m.valueSize);
    v.writeUInt32LE(1, 0);
    m.update(Buffer.alloc(4), v);
    return true;
  });
}

/** Whether the director (progFd) passes to LVS_CHAIN_AFTER (for status and tests). */
export function chainsPassed(progFd: number): boolean {
  return withProgramMap(progFd, (name) => name === CHAIN_ON_MAP, (m) => (m.lookup(Buffer.alloc(4))?.readUInt32LE(0) ?? 0) !== 0) ?? true;
}

function key(ifindex: number, pos: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(ifindex * CHAIN.positions + pos);
  return b;
}

/** The pinned program array. Programs go in by fd; a lookup answers the program's id. */
export class ChainMap {
  private constructor(readonly map: BpfMap) {}

  static open(paths: StatePaths): ChainMap | undefined {
    const pin = `${chainDir(paths)}/${CHAIN_MAP}`;
    return existsSync(pin) ? new ChainMap(BpfMap.fromPin(pin)) : undefined;
  }

  /** The id of the program in a slot, 0 when empty. */
  progAt(ifindex: number, pos: number): number {
    if (ifindex >= CHAIN.ifs) return 0;
    const v = this.map.lookup(key(ifindex, pos));
    return v ? v.readUInt32LE(0) : 0;
  }

  set(ifindex: number, pos: number, progFd: number): void {
    const v = Buffer.alloc(4);
    v.writeUInt32LE(progFd);
    this.map.update(key(ifindex, pos), v);
  }

  clear(ifindex: number, pos: number): void {
    this.map.delete(key(ifindex, pos));
  }

  /** The interface's slots, by position name (ids; empty ones left out). */
  slots(ifindex: number): Record<string, number> {
    const out: Record<string, number> = {};
    POSITION_NAMES.forEach((n, pos) => {
      const id = this.progAt(ifindex, pos);
      if (id) out[n] = id;
    });
    return out;
  }

  close(): void {
    this.map.close();
  }
}

/** The pinned root program's id, if there is one. */
export function rootProgId(paths: StatePaths): number | undefined {
  const pin = `${chainDir(paths)}/${ROOT_PIN}`;
  if (!existsSync(pin)) return undefined;
  try {
    const fd = openPinned(pin);
    try {
      return progInfo(fd).id;
    } finally {
      closeFd(fd);
    }
  } catch {
    return undefined;
  }
}

/** The root program (loaded with the pinned lvs_chain and pinned, the first time); caller closes. */
async function rootFd(paths: StatePaths): Promise<number> {
  const pin = `${chainDir(paths)}/${ROOT_PIN}`;
  if (existsSync(pin)) return openPinned(pin);
  const chain = BpfMap.fromPin(`${chainDir(paths)}/${CHAIN_MAP}`);
  const obj = BpfObject.inspect(ROOT_OBJECT);
  try {
    obj.configure({ reuseMaps: { [CHAIN_MAP]: chain } });
    await obj.load();
    const fd = obj.progFd('lvs_root');
    pinObject(fd, pin);
    faultPoint('root-pinned');
    return openPinned(pin);
  } finally {
    obj.close();
    chain.close();
  }
}

/** What runs on an interface, as attach and doctor tell it apart. */
export type Occupant =
  | { kind: 'none' }
  | { kind: 'director'; id: number }
  | { kind: 'root'; id: number }
  | { kind: 'dispatcher'; id: number }
  | { kind: 'foreign'; id: number; name: string };

export function occupant(paths: StatePaths, ifname: string | number, directorProgId: number | undefined): Occupant {
  const q = xdpQuery(ifname);
  const id = [q.driverProgId, q.skbProgId, q.hwProgId].find((x) => x);
  if (!id) return { kind: 'none' };
  if (id === directorProgId) return { kind: 'director', id };
  if (id === rootProgId(paths)) return { kind: 'root', id };
  let name = '?';
  try {
    const fd = progFdById(id);
    try {
      name = progInfo(fd).name;
    } finally {
      closeFd(fd);
    }
  } catch {
    // gone meanwhile
  }
  return name === DISPATCHER_PROG ? { kind: 'dispatcher', id } : { kind: 'foreign', id, name };
}

/** Whether libxdp's dispatcher can work here: it attaches programs as freplace extensions. */
export function probeDispatcher(): { usable: boolean; reason: string } {
  const p = probeProgType(BPF_PROG_TYPE_EXT);
  if (p.supported && p.errno !== 'EPERM') return { usable: true, reason: 'the kernel loads freplace (BPF_PROG_TYPE_EXT) programs' };
  return { usable: false, reason: `the kernel refuses freplace (BPF_PROG_TYPE_EXT) programs${p.errno ? ` (${p.errno})` : ''}, which libxdp's dispatcher needs` };
}

export interface ChainAttach { mode: 'native' | 'generic' | 'offload' | 'unknown'; joined: boolean }

/**
 * Puts the director (progFd) in the interface's lvs-xdp slot and makes sure the root runs there
 * (lock held). `detachForeign` removes a foreign program (--force). Throws StateError for a
 * libxdp dispatcher, a foreign program without force, or an ifindex past the chain's reach.
 */
export async function attachChained(
  paths: StatePaths, progFd: number, directorProgId: number, ifname: string, mode: XdpMode, force: boolean,
  detachForeign: (id: number) => void,
): Promise<ChainAttach> {
  const ifindex = ifIndex(ifname);
  if (ifindex >= CHAIN.ifs) throw new StateError(`${ifname} has ifindex ${ifindex}: sharing by tail calls reaches ifindexes below ${CHAIN.ifs}`, { hint: 'attach without --multiprog (alone on the interface)' });
  const on = occupant(paths, ifname, directorProgId);
  if (on.kind === 'director') throw new StateError(`lvs-xdp is already attached to ${ifname}, alone`, { hint: 'detach it first to share the interface' });
  if (on.kind === 'dispatcher') {
    const d = probeDispatcher();
    throw new StateError(`${ifname} runs libxdp's dispatcher (program id ${on.id}): lvs-xdp does not join it${d.usable ? '' : ` (and ${d.reason})`}`, {
      hint: 'unload it (xdp-loader unload IFACE --all) and attach with --multiprog: the other programs go in lvs_chain\'s slots (README: "Sharing an interface")',
    });
  }
  if (on.kind === 'foreign') {
    if (!force) {
      throw new StateError(`${ifname} already has an XDP program attached (id ${on.id}, ${on.name}) that is neither lvs-xdp's root nor a dispatcher`, {
        hint: 'put it in a slot of lvs_chain instead (README: "Sharing an interface"), or pass --force to replace it',
      });
    }
    detachForeign(on.id);
  }
  pinChainOf(paths, progFd);
  const chain = ChainMap.open(paths);
  if (!chain) throw new StateError(`no ${CHAIN_MAP} pinned under ${chainDir(paths)}`);
  try {
    // Before the slot: the first packet a root hands the director already goes on after it.
    markChained(progFd);
    chain.set(ifindex, CHAIN.lvs, progFd);
    faultPoint('chain-slot-set');
    if (on.kind === 'root') {
      const q = xdpQuery(ifname);
      return { mode: q.driverProgId === on.id ? 'native' : q.skbProgId === on.id ? 'generic' : 'unknown', joined: true };
    }
    const root = await rootFd(paths);
    try {
      let link: XdpLink;
      try {
        link = XdpLink.attach(root, ifname, mode);
      } catch (e) {
        chain.clear(ifindex, CHAIN.lvs);
        throw e;
      }
      try {
        faultPoint('link-attached');
        link.pin(`${chainDir(paths)}/${ROOT_LINK_PREFIX}${ifname}`);
        faultPoint('link-pinned');
      } finally {
        link.close();
      }
      return { mode: link.mode, joined: false };
    } finally {
      closeFd(root);
    }
  } finally {
    chain.close();
  }
}

/** Interfaces with a pinned root link. */
export function rootLinks(paths: StatePaths): string[] {
  const dir = chainDir(paths);
  return existsSync(dir) ? readdirSync(dir).filter((f) => f.startsWith(ROOT_LINK_PREFIX)).map((f) => f.slice(ROOT_LINK_PREFIX.length)) : [];
}

/**
 * Takes the director out of an interface's chain (lock held): its slot is cleared; the root is
 * detached too when no other program has a slot there. Returns whether the root stays.
 */
export function detachChained(paths: StatePaths, ifname: string, ifindex: number | undefined, releaseLink: (pin: string) => void): boolean {
  const pin = `${chainDir(paths)}/${ROOT_LINK_PREFIX}${ifname}`;
  let idx = ifindex;
  if (existsSync(pin)) {
    try {
      const l = XdpLink.fromPin(pin);
      if (l.ifindex) idx = l.ifindex;
      l.close();
    } catch {
      // a defunct link: the ifindex the snapshot has
    }
  }
  const chain = ChainMap.open(paths);
  let others = false;
  if (chain) {
    try {
      if (idx !== undefined && idx < CHAIN.ifs) {
        chain.clear(idx, CHAIN.lvs);
        faultPoint('chain-slot-cleared');
        others = chain.progAt(idx, CHAIN.before) !== 0 || chain.progAt(idx, CHAIN.after) !== 0;
      }
    } finally {
      chain.close();
    }
  }
  if (!others && existsSync(pin)) releaseLink(pin);
  return others;
}

/** After the director went: the chain's pins go too, unless a root still runs somewhere. */
export function removeChainIfUnused(paths: StatePaths): boolean {
  const dir = chainDir(paths);
  if (!existsSync(dir) || rootLinks(paths).length > 0) return false;
  for (const f of readdirSync(dir)) unlinkSync(`${dir}/${f}`);
  rmdirSync(dir);
  return true;
}

/** Whether the director is in the interface's chain: the root runs there and the slot is its. */
export function chainedLive(paths: StatePaths, ifindex: number, directorProgId: number): { live: boolean; mode: string } {
  try {
    const root = rootProgId(paths);
    const q = xdpQuery(ifindex);
    const mode = root && q.driverProgId === root ? 'native' : root && q.skbProgId === root ? 'generic' : 'none';
    const chain = ChainMap.open(paths);
    if (!chain) return { live: false, mode };
    try {
      return { live: mode !== 'none' && chain.progAt(ifindex, CHAIN.lvs) === directorProgId, mode };
    } finally {
      chain.close();
    }
  } catch {
    return { live: false, mode: 'unknown' };
  }
}
