/**
 * The decapsulation program on a realserver: load (ABI checked against BTF first), attach to an
 * interface through a pinned bpf_link, VIP map updates, status and counters, detach. Everything
 * lives under one bpffs directory per network namespace (src/realserver/paths.ts), so many
 * realservers in namespaces of one host share a bpffs without meeting.
 */
import { existsSync, mkdirSync, rmSync, unlinkSync, readdirSync, rmdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { inInstall } from '../install-root.js';
import {
  BpfMap, BpfObject, XdpLink, closeFd, ifIndex, ifName, progFdById, progInfo, xdpQuery, type XdpMode,
} from '../native/index.js';
import { BpffsError, StateError, isOnBpffs } from '../errors.js';
import { DECAP_COUNTERS, DECAP_SKELETON } from '../abi/decap-generated.js';
import { checkSkeleton } from '../abi/skeleton.js';
import type { ParsedAddress } from '../model/address.js';
import { DECAP_MAPS, DECAP_PROGRAM, DECAP_STRUCTS, decodeVipStats, vipFromKey, vipKey } from './decap-abi.js';
import type { DecapStatus } from './model.js';

export const DECAP_OBJECT = inInstall('bpf', 'lvs_decap.o');

export interface DecapPins {
  dir: string;
  link: string;
  vips: string;
  counters: string;
}

export function decapPins(pinDir: string): DecapPins {
  return { dir: pinDir, link: `${pinDir}/link`, vips: `${pinDir}/${DECAP_MAPS.vips}`, counters: `${pinDir}/${DECAP_MAPS.counters}` };
}

/** Opens the object, refuses it (LayoutError) when it differs from the generated skeleton or
 *  src/realserver/decap-abi.ts's layouts: the check the director's loader makes, same code. */
export function inspectDecap(path = DECAP_OBJECT): BpfObject {
  const obj = BpfObject.inspect(path);
  try {
    checkSkeleton(obj, DECAP_SKELETON, DECAP_STRUCTS, path);
    return obj;
  } catch (e) {
    obj.close();
    throw e;
  }
}

/** The pinned link, or undefined when none is pinned. The caller closes it. */
function openLink(pins: DecapPins): XdpLink | undefined {
  return existsSync(pins.link) ? XdpLink.fromPin(pins.link) : undefined;
}

function progName(id: number): string | undefined {
  try {
    const fd = progFdById(id);
    try {
      return progInfo(fd).name;
    } finally {
      closeFd(fd);
    }
  } catch {
    return undefined;
  }
}

/** VIPs in the pinned map with their statistics; null when no map is pinned. */
export function readVips(pins: DecapPins): Map<string, { packets: bigint; bytes: bigint }> | null {
  if (!existsSync(pins.vips)) return null;
  const m = BpfMap.fromPin(pins.vips);
  try {
    const out = new Map<string, { packets: bigint; bytes: bigint }>();
    for (const k of m.keys()) {
      const v = m.lookup(k);
      if (v) out.set(vipFromKey(k), decodeVipStats(v));
    }
    return out;
  } finally {
    m.close();
  }
}

export function readDecapStatus(pins: DecapPins, dev: string): DecapStatus {
  const status: DecapStatus = { pinned: false, devProgId: xdpQuery(dev).progId, vips: readVips(pins) };
  if (status.devProgId) {
    const name = progName(status.devProgId);
    if (name) status.devProgName = name;
  }
  const link = openLink(pins);
  if (link) {
    try {
      status.pinned = true;
      const info = link.info();
      status.linkProgId = info.progId;
      if (info.ifindex) status.linkIfname = ifName(info.ifindex);
    } finally {
      link.close();
    }
  }
  return status;
}

/** Totals of lvs_decap_counters by counter name; null when no counters map is pinned. */
export function readDecapCounters(pins: DecapPins): Record<string, bigint> | null {
  if (!existsSync(pins.counters)) return null;
  const m = BpfMap.fromPin(pins.counters);
  try {
    const out: Record<string, bigint> = {};
    for (const c of DECAP_COUNTERS) {
      const k = Buffer.alloc(4);
      k.writeUInt32LE(c.index);
      out[c.name] = (m.lookupPerCpu(k) ?? []).reduce((s, b) => s + b.readBigUInt64LE(0), 0n);
    }
    return out;
  } finally {
    m.close();
  }
}

export interface AttachResult {
  /** False when the program was attached to `dev` already (nothing changed). */
  attached: boolean;
  mode: XdpLink['mode'];
  progId: number;
}

/**
 * Makes sure the decapsulation program is attached to `dev` with its link and maps pinned under
 * pins.dir. Idempotent: an existing pinned link on `dev` is kept. A pinned link on another
 * interface is a StateError (teardown first); a defunct one (its interface gone) is replaced.
 */
export async function attachDecap(pins: DecapPins, dev: string, opts: { objectPath?: string; mode?: XdpMode } = {}): Promise<AttachResult> {
  if (!isOnBpffs(dirname(pins.dir))) {
    throw new BpffsError(`${dirname(pins.dir)} is not on a BPF filesystem`);
  }
  const idx = ifIndex(dev);
  const existing = openLink(pins);
  if (existing) {
    try {
      const info = existing.info();
      if (info.ifindex === idx) return { attached: false, mode: existing.mode, progId: info.progId };
      if (info.ifindex) {
        throw new StateError(`the decapsulation program is attached to ${ifName(info.ifindex)}, not ${dev}`, {
          hint: 'lvs-xdp realserver teardown first, then set up the other interface',
        });
      }
    } finally {
      existing.close();
    }
    unlinkSync(pins.link); // defunct: its interface went away
  }
  mkdirSync(pins.dir, { recursive: true, mode: 0o700 });
  const hadMaps = existsSync(pins.vips) || existsSync(pins.counters);
  const obj = inspectDecap(opts.objectPath);
  try {
    // Maps are pinned at load and reused by later loads (libbpf), so VIPs and counters survive.
    obj.configure({ pinPaths: { [DECAP_MAPS.vips]: pins.vips, [DECAP_MAPS.counters]: pins.counters } });
    await obj.load();
    const progFd = obj.progFd(DECAP_PROGRAM);
    const link = XdpLink.attach(progFd, dev, opts.mode ?? 'auto');
    try {
      link.pin(pins.link);
    } catch (e) {
      link.detach();
      throw e;
    } finally {
      link.close();
    }
    return { attached: true, mode: link.mode, progId: progInfo(progFd).id };
  } catch (e) {
    // Nothing attached: do not leave behind map pins this call created.
    if (!hadMaps) {
      for (const p of [pins.vips, pins.counters]) rmSync(p, { force: true });
      if (readdirSync(pins.dir).length === 0) rmdirSync(pins.dir);
    }
    throw e;
  } finally {
    obj.close();
  }
}

/** Detaches the pinned link (if any) and removes the pins and the directory. Returns whether a
 *  program was attached. */
export function detachDecap(pins: DecapPins): boolean {
  let detached = false;
  const link = openLink(pins);
  if (link) {
    try {
      if (link.info().ifindex) {
        link.detach();
        detached = true;
      }
    } finally {
      link.close();
    }
  }
  for (const p of [pins.link, pins.vips, pins.counters]) rmSync(p, { force: true });
  if (existsSync(pins.dir) && readdirSync(pins.dir).length === 0) rmdirSync(pins.dir);
  return detached;
}

function withVipMap<T>(pins: DecapPins, fn: (m: BpfMap) => T): T {
  if (!existsSync(pins.vips)) throw new StateError(`no VIP map pinned at ${pins.vips}`, { hint: 'lvs-xdp realserver setup --mode tun ... attaches it' });
  const m = BpfMap.fromPin(pins.vips);
  try {
    return fn(m);
  } finally {
    m.close();
  }
}

/** Puts a VIP into the map; false when it was there already. */
export function addDecapVip(pins: DecapPins, vip: ParsedAddress): boolean {
  return withVipMap(pins, (m) => {
    const k = vipKey(vip);
    if (m.lookup(k)) return false;
    m.update(k, Buffer.alloc(16));
    return true;
  });
}

/** Removes a VIP from the map; false when it was not there (or no map is pinned). */
export function removeDecapVip(pins: DecapPins, vip: ParsedAddress): boolean {
  if (!existsSync(pins.vips)) return false;
  return withVipMap(pins, (m) => m.delete(vipKey(vip)));
}
